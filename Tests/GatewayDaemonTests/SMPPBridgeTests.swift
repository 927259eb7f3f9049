import Foundation
import Gateway
@testable import GatewayDaemon
import Logging
import SMPP
import Testing
@testable import HandsetCore

/// The bridge against a scripted SMSC on a real socket: deliver_sm_resp goes out only once the Gateway handled the
/// message, a concatenated uplink is acknowledged only when whole, and a draining bridge refuses with 0x65.
@Suite struct SMPPBridgeTests {
    struct NoConnection: Error {}

    final class ScriptedSMSC: @unchecked Sendable {
        let listenFD: Int32, port: Int
        var socket: SMPPSocket!
        var sequence: UInt32 = 100
        init() throws {
            (listenFD, port) = try SMPPSocket.listen(port: 0)
        }
        func acceptAndBind() throws {
            guard let s = SMPPSocket.accept(listening: listenFD, timeoutMs: 5000) else { throw NoConnection() }
            socket = s
            let bind = try #require(next(within: 5))
            try socket.send(SMPPPDU(.bindTransceiverResp(systemID: "test"), sequence: bind.sequence))
        }
        /// The next PDU other than enquire_link, or nil when none came in time.
        func next(within seconds: Double) -> SMPPPDU? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                guard socket.readable(timeoutMs: 20), let bytes = try? socket.readPDU() else { continue }
                guard let pdu = try? SMPPPDU.decode(bytes) else { return nil }
                if case .enquireLink = pdu.body { try? socket.send(SMPPPDU(.enquireLinkResp, sequence: pdu.sequence)); continue }
                return pdu
            }
            return nil
        }
        /// Sends one deliver_sm with `userData` (a UDH first); returns its sequence number.
        @discardableResult
        func deliver(_ userData: [UInt8], from: String) throws -> UInt32 {
            sequence += 1
            var m = SMPPShortMessage()
            m.sourceTON = 1; m.sourceAddr = String(from.dropFirst()); m.destAddr = "15550199"
            m.esmClass = SMPPShortMessage.udhi; m.dataCoding = 0x04; m.shortMessage = userData
            try socket.send(SMPPPDU(.deliverSM(m), sequence: sequence))
            return sequence
        }
        func close() { socket?.close(); Glibc.close(listenFD) }
    }

    static let portUDH: [UInt8] = [0x05, 0x04, 0x40, 0x10, 0x40, 0x10]  // IEI 0x05: 16400 -> 16400

    @Test(arguments: [false, true]) func acknowledgesOnlyAfterTheGatewayHandledTheMessage(threadedESME: Bool) throws {
        let a = PerDeviceConcurrencyTests.a, b = PerDeviceConcurrencyTests.b
        let peer = StallingPeer(stalling: a)
        let (gateway, login) = try PerDeviceConcurrencyTests.world(peer: peer)
        let smsc = try ScriptedSMSC()
        defer { smsc.close() }
        var config = ESMEConfig(host: "127.0.0.1", port: smsc.port, systemID: "gw", password: "pw")
        config.sourceAddr = "+15550199"
        let bridge = SMPPBridge(gateway: gateway, esme: config, metrics: GatewayMetrics(), reassemblyLimit: 4,
                                reassemblyTimeout: 30, drainTimeout: 2, logger: Logger(label: "test"), threadedESME: threadedESME)
        bridge.esme.start()
        defer { bridge.esme.stop() }
        try smsc.acceptAndBind()

        // A's login stalls in the peer: no deliver_sm_resp while it does.
        let seqA = try smsc.deliver([UInt8(Self.portUDH.count)] + Self.portUDH + login[a]!, from: "+15550000")
        #expect(peer.entered.wait(timeout: .now() + 5) == .success)
        #expect(smsc.next(within: 0.5) == nil, "acknowledged before the Gateway handled it")

        // B's login in two parts: the first is held unacknowledged, the second completes it and both are answered
        // (with B's login-ack), all while A is still stalled.
        let whole = login[b]!, half = whole.count / 2
        func part(_ n: UInt8, _ bytes: ArraySlice<UInt8>) -> [UInt8] {
            let udh = Self.portUDH + [0x08, 0x04, 0x00, 0x2A, 0x02, n]
            return [UInt8(udh.count)] + udh + bytes
        }
        let seqB1 = try smsc.deliver(part(1, whole[..<half]), from: "+15550001")
        #expect(smsc.next(within: 0.3) == nil, "a part was acknowledged before its message was whole")
        let seqB2 = try smsc.deliver(part(2, whole[half...]), from: "+15550001")
        var acked: [UInt32: UInt32] = [:]
        var submitsTo: [String] = []
        while acked.count < 2 || submitsTo.isEmpty, let pdu = smsc.next(within: 3) {
            switch pdu.body {
            case .deliverSMResp: acked[pdu.sequence] = pdu.status
            case .submitSM(let m):
                submitsTo.append(m.destAddr)
                try smsc.socket.send(SMPPPDU(.submitSMResp(messageID: "1"), sequence: pdu.sequence))
            default: break
            }
        }
        #expect(acked == [seqB1: SMPPStatus.ok, seqB2: SMPPStatus.ok])
        #expect(submitsTo == ["15550001"])

        // Released, A's message is handled and only then acknowledged.
        peer.release.signal()
        var ackedA: UInt32?
        while ackedA == nil, let pdu = smsc.next(within: 3) {
            if case .deliverSMResp = pdu.body, pdu.sequence == seqA { ackedA = pdu.status }
            if case .submitSM = pdu.body { try smsc.socket.send(SMPPPDU(.submitSMResp(messageID: "2"), sequence: pdu.sequence)) }
        }
        #expect(ackedA == SMPPStatus.ok)
        #expect(gateway.counters.logins == 2)

        // Draining: a new delivery is handed back with a temporary error, and nothing reaches the Gateway.
        bridge.esme.refuseDeliveries()
        let seqLate = try smsc.deliver([UInt8(Self.portUDH.count)] + Self.portUDH + [1, 2, 3], from: "+15550000")
        var late: SMPPPDU?
        while late == nil, let pdu = smsc.next(within: 3) {
            if case .deliverSMResp = pdu.body, pdu.sequence == seqLate { late = pdu }
        }
        #expect(late?.status == SMPPStatus.temporaryAppError)
        #expect(gateway.counters.received == 2)
    }
}

@Suite(.serialized) struct SMPPBridgeDrainTests {
    /// A drain started while a message is in hand lets it finish: it is answered and acknowledged, and only then
    /// does the client unbind.
    @Test(arguments: [false, true]) func drainFinishesTheMessageInHandBeforeUnbinding(threadedESME: Bool) async throws {
        let a = PerDeviceConcurrencyTests.a
        let peer = StallingPeer(stalling: a)
        let (gateway, login) = try PerDeviceConcurrencyTests.world(peer: peer)
        let smsc = try SMPPBridgeTests.ScriptedSMSC()
        defer { smsc.close() }
        let bridge = SMPPBridge(gateway: gateway, esme: ESMEConfig(host: "127.0.0.1", port: smsc.port, systemID: "gw", password: "pw"),
                                metrics: GatewayMetrics(), reassemblyLimit: 4, reassemblyTimeout: 30, drainTimeout: 5,
                                logger: Logger(label: "test"), threadedESME: threadedESME)
        bridge.esme.start()
        try smsc.acceptAndBind()
        let seq = try smsc.deliver([UInt8(SMPPBridgeTests.portUDH.count)] + SMPPBridgeTests.portUDH + login[a]!, from: "+15550000")
        #expect(peer.entered.wait(timeout: .now() + 5) == .success)
        // The SMSC's side runs on a thread of its own: its blocking reads must not hold the tasks' threads.
        let order = LockedBox<[String]>([]), scriptDone = DispatchSemaphore(value: 0)
        Thread {
            while !order.get().contains("unbind"), let pdu = smsc.next(within: 5) {
                switch pdu.body {
                case .deliverSMResp where pdu.sequence == seq: order.update { $0.append("ack \(pdu.status)") }
                case .submitSM:
                    order.update { $0.append("submit") }
                    try? smsc.socket.send(SMPPPDU(.submitSMResp(messageID: "1"), sequence: pdu.sequence))
                case .unbind:
                    order.update { $0.append("unbind") }
                    try? smsc.socket.send(SMPPPDU(.unbindResp, sequence: pdu.sequence))
                default: break
                }
            }
            scriptDone.signal()
        }.start()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { peer.release.signal() }
        await bridge.drain()
        #expect(scriptDone.wait(timeout: .now() + 5) == .success)
        #expect(order.get().last == "unbind")
        #expect(Set(order.get().dropLast()) == ["ack 0", "submit"])
        #expect(gateway.counters.logins == 1)
        #expect(!bridge.isBound)
    }
}

@Suite struct SMPPBridgeReconnectTests {
    /// The link drops while a message is in hand: its acknowledgement is not sent on the next connection (whose
    /// sequence numbers mean other PDUs) but counted lost; the client re-binds, and the SMSC's redelivery is
    /// acknowledged (the Gateway refuses the replay without answering it).
    @Test(arguments: [false, true]) func anAckForADroppedLinkIsNotSentOnTheNextOne(threadedESME: Bool) async throws {
        let a = PerDeviceConcurrencyTests.a
        let peer = StallingPeer(stalling: a)
        let (gateway, login) = try PerDeviceConcurrencyTests.world(peer: peer)
        let smsc = try SMPPBridgeTests.ScriptedSMSC()
        defer { smsc.close() }
        var config = ESMEConfig(host: "127.0.0.1", port: smsc.port, systemID: "gw", password: "pw")
        config.reconnectDelay = 0.1
        let bridge = SMPPBridge(gateway: gateway, esme: config, metrics: GatewayMetrics(), reassemblyLimit: 4,
                                reassemblyTimeout: 30, drainTimeout: 2, logger: Logger(label: "test"), threadedESME: threadedESME)
        bridge.esme.start()
        defer { bridge.esme.stop() }
        try smsc.acceptAndBind()
        let userData = [UInt8(SMPPBridgeTests.portUDH.count)] + SMPPBridgeTests.portUDH + login[a]!
        try smsc.deliver(userData, from: "+15550000")
        #expect(peer.entered.wait(timeout: .now() + 5) == .success)
        smsc.socket.close()
        try smsc.acceptAndBind()
        peer.release.signal()
        let deadline = Date().addingTimeInterval(3)
        while bridge.esme.counters.acksLost == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(bridge.esme.counters.acksLost == 1)
        #expect(bridge.esme.counters.binds == 2)
        let seq = try smsc.deliver(userData, from: "+15550000")
        var ack: SMPPPDU?
        while ack == nil, let pdu = smsc.next(within: 3) {
            switch pdu.body {
            case .deliverSMResp: ack = pdu
            case .submitSM: try smsc.socket.send(SMPPPDU(.submitSMResp(messageID: "1"), sequence: pdu.sequence))
            default: break
            }
        }
        #expect(ack?.sequence == seq && ack?.status == SMPPStatus.ok)
        #expect(gateway.counters.logins == 1 && gateway.counters.counterErrors == 1)
    }
}
