import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// SMS or UDP per message (docs/key-delegation.md §1): the carriage policy, the UDP-allowed types, and the
/// refusal of SMS-only types that arrive by UDP on either side.
@Suite struct KeyDelegationCarriageTests {
    static let allTypes: [KDMessageType] = [.login, .loginAck, .keyConfirm, .confirmAck, .keyRequest, .saTransfer, .saAck,
                                            .saDelete, .secretData, .fetchRequest, .fetchResponse, .error]
    static let udpTypes: Set<UInt8> = [0x10, 0x11, 0x12, 0x13, 0x7F]

    /// A handset logged in (by SMS) against a fresh gateway.
    func withLoggedIn(_ body: (World, inout KeyDelegationClient<FlashStore>, inout HandsetPlane) throws -> Void) throws {
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        #expect(c.phase == .ready)
        try body(w, &c, &plane)
    }

    func selector(_ c: borrowing KeyDelegationClient<FlashStore>, _ w: World) -> TrafficSelector {
        TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 5000, remotePort: 7)
    }

    @Test(arguments: allTypes)
    func onlyKeyRequestsTransfersAcksDeletesAndErrorsMayUseUDP(_ t: KDMessageType) {
        #expect(KD.allowedOverUDP(t) == Self.udpTypes.contains(t.rawValue))
    }

    @Test func smsOnlyModeNeverLeavesSMS() {
        var p = KDCarriagePolicy(mode: .smsOnly)
        for t in Self.allTypes { #expect(p.choose(t) == .sms) }
        #expect(p.smsFailed(.keyRequest, now: 5) == .wait)
        #expect(p.smsAvailable && p.choose(.keyRequest) == .sms && p.counters.smsFailures == 1)
        let admitted = p.admitSMSOnly()
        #expect(admitted)
    }

    @Test func fallbackUsesUDPForAllowedTypesUntilTheRetryTime() {
        var p = KDCarriagePolicy(mode: .udpFallback, retrySeconds: 10)
        for t in Self.allTypes { #expect(p.choose(t) == .sms, "\(t) before any failure") }
        #expect(p.smsFailed(.keyRequest, now: 100) == .udp)
        #expect(!p.smsAvailable)
        for t in Self.allTypes {
            let expected: KDCarriageDecision = KD.allowedOverUDP(t) ? .udp : (t == .login || t == .keyConfirm ? .sms : .drop)
            #expect(p.choose(t) == expected, "\(t) while SMS is down")
        }
        p.tick(now: 109)
        #expect(!p.smsAvailable && p.choose(.saAck) == .udp)
        p.tick(now: 110)
        #expect(p.smsAvailable && p.choose(.saAck) == .sms && p.choose(.secretData) == .sms)
    }

    @Test func aFailedSMSOnlyMessageIsNeverSentByUDP() {
        var p = KDCarriagePolicy(mode: .udpFallback)
        for t in Self.allTypes where !KD.allowedOverUDP(t) {
            // Login and confirm stay queued for the next tick's SMS try; the rest is refused to the application.
            let expected: KDCarriageDecision = t == .login || t == .keyConfirm ? .wait : .drop
            #expect(p.smsFailed(t, now: 1) == expected, "\(t)")
        }
        #expect(!p.smsAvailable && p.counters.smsFailures == 7)
    }

    @Test func outgoingMessagesAreMarkedByType() throws {
        try withLoggedIn { w, c, _ in
        c.requestKey(template: 1, selector: selector(c, w), now: 1)
        #expect(Array("x".utf8).withUnsafeBytes { c.sendSecret(channel: 1, $0) })
        let request = c.outbox.pop(), secret = c.outbox.pop()
        #expect(request?.type == .keyRequest && request?.smsOnly == false)
        #expect(secret?.type == .secretData && secret?.smsOnly == true)
        }
    }

    @Test func secretAndFetchAreRefusedWhileSMSIsDownWithoutSpendingACounter() throws {
        try withLoggedIn { _, c, _ in
        c.carriage = KDCarriagePolicy(mode: .udpFallback)
        _ = c.carriage.smsFailed(.keyRequest, now: 1)
        let state = c.state, outbox = c.outbox.count
        #expect(!Array("PIN 1234".utf8).withUnsafeBytes { c.sendSecret(channel: 3, $0) })
        #expect(Array("https://127.0.0.1/".utf8).withUnsafeBytes { c.fetch($0) } == nil)
        #expect(c.state == state && c.outbox.count == outbox)
        #expect(c.carriage.counters.refused == 2)
        }
    }

    /// A key request by UDP is answered by UDP, and the SA it carries installs as if it came by SMS.
    @Test func keyRequestByUDPGetsItsSAByUDP() throws {
        try withLoggedIn { w, c, plane in
        c.requestKey(template: 1, selector: selector(c, w), now: 1)
        let up = c.drain()
        #expect(up.count == 1)
        let answers = w.gateway.handleUplink(up[0], via: .udp)
        #expect(answers.map(\.type) == [.saTransfer] && answers.map(\.carriage) == [.udp])
        #expect(w.gateway.counters.byUDP == 1)
        let r = answers[0].bytes.withUnsafeBytes { c.receive($0, via: .udp, now: 2, plane: &plane) }
        #expect(r == .accepted(.saTransfer) && plane.sas.count == 2)
        #expect(c.carriage.counters.udpReceived == 1)
        // The ack may go by UDP as well and is taken there.
        let ack = c.drain()
        #expect(ack.count == 1)
        #expect(w.gateway.handleUplink(ack[0], via: .udp).isEmpty && w.gateway.counters.byUDP == 2)
        }
    }

    /// The fallback carries the identical bytes: if the SMS copy got through after all, the UDP copy is a
    /// counter-low duplicate, so the gateway acts once and answers once.
    @Test func theSameMessageByBothCarriagesIsActedOnOnce() throws {
        try withLoggedIn { w, c, _ in
        c.requestKey(template: 1, selector: selector(c, w), now: 1)
        let up = c.drain()[0]
        #expect(w.gateway.handleUplink(up).map(\.type) == [.saTransfer])
        let calls = w.peer.establishCalls
        let dup = w.gateway.handleUplink(up, via: .udp)
        #expect(dup.isEmpty)
        #expect(w.peer.establishCalls == calls && w.gateway.counters.counterErrors == 1)
        }
    }

    @Test func gatewayRefusesSMSOnlyTypesByUDPAndChangesNothing() throws {
        let w = try World()
        var c = try w.handset()
        c.boot(now: 0)
        let login = c.drain()[0]
        let before = try w.registry.device(id: w.deviceID)
        #expect(w.gateway.handleUplink(login, via: .udp).isEmpty)
        #expect(w.gateway.counters.wrongCarriage == 1 && w.gateway.counters.logins == 0)
        #expect(try w.registry.device(id: w.deviceID) == before)
        // Nothing was consumed: the same login by SMS is taken.
        #expect(w.gateway.handleUplink(login).map(\.type) == [.loginAck])
    }

    @Test func gatewayRefusesSecretDataByUDP() throws {
        try withLoggedIn { w, c, _ in
        #expect(Array("PIN 1234".utf8).withUnsafeBytes { c.sendSecret(channel: 3, $0) })
        let secret = c.drain()[0]
        let before = try w.registry.device(id: w.deviceID)
        #expect(w.gateway.handleUplink(secret, via: .udp).isEmpty)
        #expect(w.gateway.counters.wrongCarriage == 1 && w.gateway.counters.secrets == 0)
        #expect(try w.registry.device(id: w.deviceID) == before)
        }
    }

    @Test func handsetRefusesSMSOnlyTypesByUDPAndChangesNothing() throws {
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        let loginAck = w.gateway.handleUplink(c.drain()[0])
        #expect(loginAck.map(\.type) == [.loginAck] && loginAck[0].carriage == .sms)
        let flash = w.flash.image, phase = c.phase
        let r = loginAck[0].bytes.withUnsafeBytes { c.receive($0, via: .udp, now: 1, plane: &plane) }
        #expect(r == .rejected(.denied))
        #expect(c.counters.wrongCarriage == 1 && c.counters.received == 0)
        #expect(w.flash.image == flash && c.phase == phase && c.outbox.isEmpty)
        // The same bytes by SMS still work: nothing was consumed.
        #expect(c.deliver(loginAck, plane: &plane) == [.accepted(.loginAck)])
    }

    @Test(arguments: [
        ([0, 0, 0, 0, 1], true),  // marker + a message
        ([0, 0, 0, 0], false),  // marker alone
        ([0xFF], false),  // NAT keepalive (RFC 3948 §2.3)
        ([0, 0, 0, 1, 1], false),  // SPI 1: ESP
        ([0x50, 0, 0, 0, 0, 0, 0, 1], false),  // ESP
    ] as [([UInt8], Bool)])
    func nonESPMarkerSeparatesKeyDelegationFromESP(_ datagram: [UInt8], _ isKD: Bool) {
        #expect(datagram.withUnsafeBytes { KD.isKeyDelegationDatagram($0) } == isKD)
    }
}
