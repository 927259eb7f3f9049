import Foundation
import EmulatorSupport
import Gateway
import HandsetCore
import ModemSim

/// The firmware's STATUS answer (docs/firmware.md, App interface).
struct HandsetStatus {
    var sas = 0, espIn = 0, espDropped = 0, udpOut = 0, udpIn = 0, wrongCarriage = 0, refused = 0, appRefused = 0
    var smsAvailable = true
    /// Bit 0: the asked outbound SA is installed, bit 1: the inbound one.
    var pair: UInt8?

    init?(_ b: [UInt8]) {
        guard b.count >= 31 else { return nil }
        func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        sas = Int(b[0]) << 8 | Int(b[1])
        espIn = u32(2); espDropped = u32(6); udpOut = u32(10); udpIn = u32(14)
        smsAvailable = b[18] == 1
        wrongCarriage = u32(19); refused = u32(23); appRefused = u32(27)
        pair = b.count > 31 ? b[31] : nil
    }
}

extension ScenarioContext {
    /// Asks the firmware for its STATUS, optionally about one SA pair (the handset's outbound, inbound SPI).
    func status(pair: (UInt32, UInt32)? = nil) throws -> HandsetStatus {
        while app.wait(timeout: 0, { $0.op == 0x85 }) != nil {}  // a late answer to an earlier ask
        var req: [UInt8] = [0x04]
        if let (o, i) = pair { req += [o, i].flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } } }
        app.send(req)
        let m = try expect(0x85, "the firmware's status", timeout: 10)
        guard let s = HandsetStatus(m.body) else { throw ScenarioFailure("short status answer (\(m.body.count) B)") }
        return s
    }

    /// Waits until the firmware has logged in (the gateway confirmed a rotated key) and registers the app.
    func loggedIn() throws {
        try within(90, "the login to complete") { world.gw.counters.rotations >= 1 }
        app.hello()
        app.drain()
    }

    static func spi(_ event: AppClient.Message) -> UInt32 {
        event.body.count >= 5 ? event.body[1...4].reduce(0) { $0 << 8 | UInt32($1) } : 0
    }
}

extension Scenario {
    /// SMS is made unavailable (every AT+CMGS fails). A new flow still gets its SA: the key request, the
    /// transfer and the ack travel as UDP datagrams; secret data is refused, never sent by UDP.
    static func kdOverUDP(_ c: ScenarioContext) throws -> String {
        let w = c.world
        try c.loggedIn()
        let smsUp = w.snapshot.smsUp, fails = w.sim.faultCount(.smsSendFail)
        let before = w.gw.counters, byUDP = before.byUDP
        for rule in try FaultPlan.parse("sms-send-fail") { w.sim.setFault(rule) }
        defer { w.sim.clearFault(.smsSendFail) }
        // A flow of its own (rule 9000-9100 -> *), so no earlier SA covers it and a key request must go out.
        let text = "echo under an SA delivered by UDP"
        c.app.datagram(to: EmulatedPeer.flowEchoPort, from: 9071, Array(text.utf8))
        _ = try c.expect(0x84, "'waiting for key'") { $0.body.first == 2 }
        let installed = try c.expect(0x84, "'SA installed'") { $0.body.first == 5 }
        _ = try c.expect(0x81, "the echo") { String(decoding: $0.body.dropFirst(8), as: UTF8.self) == text }
        guard w.sim.faultCount(.smsSendFail) > fails else { throw ScenarioFailure("no SMS send was even attempted") }
        guard w.snapshot.smsUp == smsUp else { throw ScenarioFailure("an SMS went up although +CMGS fails") }
        // The ack leaves after the held datagram, so it may still be on its way.
        try c.within(10, "the key request and the SA ack to reach the gateway by UDP") { w.gw.counters.byUDP >= byUDP + 2 }
        let st = try c.status()
        guard !st.smsAvailable, st.udpOut >= 2, st.udpIn >= 1 else {
            throw ScenarioFailure("firmware status: SMS available \(st.smsAvailable), UDP out \(st.udpOut), in \(st.udpIn)")
        }
        // Secret data while SMS is unavailable: refused with an event, never on any UDP path.
        let secret = "PIN 9876 while SMS is down"
        c.app.secret(channel: 2, Array(secret.utf8))
        _ = try c.expect(0x84, "'SMS unavailable' for the secret", timeout: 30) { $0.body.first == 7 }
        // Nothing SMS-only reached the gateway by UDP (it would count it as wrong carriage), no secret was handled.
        let after = w.gw.counters
        guard after.wrongCarriage == before.wrongCarriage, after.secrets == before.secrets,
              !w.services.secretsSeen.contains(Array(secret.utf8)),
              !w.capture.contains(Array(secret.utf8)) else { throw ScenarioFailure("the secret left the handset") }
        guard (try c.status()).refused > st.refused else { throw ScenarioFailure("the refusal was not counted") }
        let spi = String(format: "0x%08x", ScenarioContext.spi(installed))
        return "+CMGS failing: SA \(spi) by UDP (\(st.udpOut) up, \(st.udpIn) down), echo works, secret refused (event 7)"
    }

    /// The opposite party ends one pair and the gateway sends sa-delete: the handset drops both halves, a
    /// packet the peer sealed under the old pair is dropped, and the next datagram brings a fresh pair.
    static func saDelete(_ c: ScenarioContext) throws -> String {
        let w = c.world
        try c.loggedIn()
        let sport: UInt16 = 9072, port = EmulatedPeer.flowEchoPort
        c.app.datagram(to: port, from: sport, Array("before the delete".utf8))
        let first = try c.expect(0x84, "'SA installed'") { $0.body.first == 5 }
        _ = try c.expect(0x81, "the echo before the delete") { String(decoding: $0.body.dropFirst(8), as: UTF8.self) == "before the delete" }
        let old = ScenarioContext.spi(first)
        // A packet in flight under the old pair, sealed before the peer lets go of it.
        guard let stale = w.peer.sealOnly(Array("stale".utf8), to: w.handsetAddress, port: sport, from: port) else {
            throw ScenarioFailure("the peer could not seal under the old pair")
        }
        guard let pair = w.peer.endPair(handsetOutboundSPI: old) else { throw ScenarioFailure("the peer holds no pair \(old)") }
        let before = try c.status(pair: (pair.outbound, pair.inbound))
        guard before.pair == 3 else { throw ScenarioFailure("the handset does not hold both halves before the delete") }
        try w.gw.deleteSA(device: w.deviceID, outbound: pair.outbound, inbound: pair.inbound)
        var after = before
        try c.within(60, "the handset to remove both halves") {
            after = (try? c.status(pair: (pair.outbound, pair.inbound))) ?? after
            return after.pair == 0
        }
        guard w.peer.sendSealed(stale, to: w.handsetAddress) else { throw ScenarioFailure("the peer could not send") }
        try c.within(20, "the handset to drop the old-SPI packet") {
            ((try? c.status())?.espDropped ?? 0) > after.espDropped
        }
        if c.app.wait(timeout: 0.5, { $0.op == 0x81 && $0.text.contains("stale") }) != nil {
            throw ScenarioFailure("a packet under the deleted SA was delivered")
        }
        c.app.datagram(to: port, from: sport, Array("after the delete".utf8))
        _ = try c.expect(0x84, "'waiting for key' after the delete") { $0.body.first == 2 }
        let fresh = try c.expect(0x84, "a fresh 'SA installed'") { $0.body.first == 5 }
        _ = try c.expect(0x81, "the echo after the delete") { String(decoding: $0.body.dropFirst(8), as: UTF8.self) == "after the delete" }
        let new = ScenarioContext.spi(fresh)
        guard new != old else { throw ScenarioFailure("the new pair reuses SPI \(old)") }
        return String(format: "pair 0x%08x deleted (handset SAs %d -> %d), old-SPI packet dropped, new pair 0x%08x",
                      old, before.sas, after.sas, new)
    }

    /// The module loses the final result of the AT+CMGR that reads a pushed SA (the host times out). The SMS
    /// stays stored; the firmware lists storage again on its next tick and installs the SA, then deletes it.
    static func readRetry(_ c: ScenarioContext) throws -> String {
        let w = c.world
        try c.loggedIn()
        let dropped = w.sim.faultCount(.dropFinal)
        w.sim.setFault(FaultRule(kind: .dropFinal, value: nil, trigger: .nth(1)))
        defer { w.sim.clearFault(.dropFinal) }
        let sel = TrafficSelector(local: w.handsetAddress, remote: w.peer.address, localPort: 9074, remotePort: 0)
        try w.gw.push(device: w.deviceID, selector: sel)
        let installed = try c.expect(0x84, "'SA installed' after the lost +CMGR final", timeout: 30) { $0.body.first == 5 }
        guard w.sim.faultCount(.dropFinal) > dropped else { throw ScenarioFailure("no final result was dropped") }
        try c.within(10, "the handled SMS to be deleted") { w.sim.storedSMS == 0 }
        return String(format: "+CMGR final lost: storage listed again next tick, SA 0x%08x installed, SMS deleted",
                      ScenarioContext.spi(installed))
    }
}
