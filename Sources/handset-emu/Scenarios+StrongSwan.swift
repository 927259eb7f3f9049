import Foundation
import Gateway
import HandsetCore
import ProxyIKE

/// Scenarios against a stock strongSwan server (`run --server strongswan`, scripts/ike-lab): the proxy charon
/// negotiates for the handset through the packet gateway, and the server's own VICI says what it holds.
extension Scenario {
    static let strongSwan: [Scenario] = [
        Scenario(name: "ike-handset-initiated",
                 summary: "key request by SMS; the proxy charon negotiates with the strongSwan server; echo via its libipsec",
                 run: ikeHandsetInitiated),
        Scenario(name: "ike-server-initiated",
                 summary: "the server initiates toward the handset's public address; the proxy answers; the SA is pushed",
                 run: ikeServerInitiated),
    ] + strongSwanLifecycle

    static func ikeHandsetInitiated(_ c: ScenarioContext) throws -> String {
        let (w, lab) = try strongSwanWorld(c)
        try c.within(90, "the firmware to log in") { w.gw.counters.rotations >= 1 }
        c.app.drain()
        let before = w.gw.counters.saDelivered
        let text = "ping through strongSwan"
        c.app.datagram(to: serviceOctets, port: 7, from: 5000, Array(text.utf8))
        _ = try c.expect(0x84, "'waiting for key'") { $0.body.first == 2 }
        let asked = Date()
        let installed = try explained(w) { try c.expect(0x84, "'SA installed'", timeout: 90) { $0.body.first == 5 } }
        let took = Date().timeIntervalSince(asked)
        let reply = try c.expect(0x81, "the echo from 10.200.0.1:7") { Array($0.body.dropFirst(8)) == Array(text.utf8) }
        guard Array(reply.body.prefix(6)) == serviceOctets + [0, 7] else {
            throw ScenarioFailure("the echo came from \(reply.body.prefix(6).map(String.init)), not 10.200.0.1:7")
        }
        guard w.gw.counters.saDelivered > before else { throw ScenarioFailure("no SA was delivered") }
        let child = try serverChild(lab, spiFromEvent: installed)
        try checkRelay(w, needsIKE: true)
        return "server CHILD_SA \(child.string("spi-in") ?? "?")/\(child.string("spi-out") ?? "?") "
            + "\(child.string("encr-alg") ?? "?")-\(child.string("encr-keysize") ?? "?"), "
            + "packets in/out \(child.string("packets-in") ?? "?")/\(child.string("packets-out") ?? "?"); "
            + String(format: "key request to SA installed %.0f ms (SMS both ways included)", took * 1000)
    }

    static func ikeServerInitiated(_ c: ScenarioContext) throws -> String {
        let (w, lab) = try strongSwanWorld(c)
        try c.within(90, "the firmware to log in") { w.gw.counters.rotations >= 1 }
        c.app.hello()
        // Start clean: the server deletes what it holds; the proxy's delete reaches the handset as sa-delete.
        let held = try lab.serverChildren().compactMap(pairOnHandset)
        for pair in held where try c.status(pair: pair).pair != 3 {
            throw ScenarioFailure("the handset does not hold the server's pair \(pair) before the delete")
        }
        lab.serverTerminate()
        try c.within(15, "the server to hold no CHILD_SA") { (try? lab.serverChildren().isEmpty) ?? false }
        for pair in held {
            try c.within(30, "the handset to drop the pair the server deleted") { (try? c.status(pair: pair).pair) == 0 }
        }
        c.app.drain()
        let pushed = w.gw.counters.saPushed, delivered = w.gw.counters.saDelivered
        try explained(w) {
            try lab.serverInitiate()
            try c.within(30, "the gateway to push the server's SA") { w.gw.counters.saPushed > pushed }
        }
        let installed = try c.expect(0x84, "'SA installed' for the pushed SA", timeout: 90) { $0.body.first == 5 }
        let child = try serverChild(lab, spiFromEvent: installed)
        let espIn = try c.status().espIn
        let text = "hello over the server's SA"
        c.app.datagram(to: serviceOctets, port: 7, from: 5001, Array(text.utf8))
        _ = try c.expect(0x81, "the echo over the pushed SA") { Array($0.body.dropFirst(8)) == Array(text.utf8) }
        guard w.gw.counters.saDelivered == delivered else {
            throw ScenarioFailure("the handset asked for a key: the pushed SA was not used")
        }
        // The server's own counters for that CHILD_SA agree with the handset's: one datagram each way.
        let received = try c.status().espIn - espIn
        let now = try lab.serverChildren().first { $0.string("spi-in") == child.string("spi-in") }
        guard let now, now.string("packets-in") == "1", now.string("packets-out") == "\(received)", received == 1 else {
            throw ScenarioFailure("server counted in/out \(now?.string("packets-in") ?? "?")/\(now?.string("packets-out") ?? "?"), "
                                  + "the handset sent 1 and received \(received)")
        }
        try checkRelay(w, needsIKE: true)
        return "\(held.count) pair(s) deleted by the server left the handset; server-made CHILD_SA "
            + "\(child.string("spi-in") ?? "?")/\(child.string("spi-out") ?? "?") pushed by SMS, echo over it without a key "
            + "request, server packets in/out 1/\(received) as the handset counted"
    }

    static let serviceOctets: [UInt8] = [10, 200, 0, 1]

    /// A failure with what the gateway, the IKE engine and the packet gateway counted.
    static func explained<T>(_ w: EmulatedWorld, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            let g = w.gw.counters, r = w.sim.packetGatewayCounters.map { "\($0)" } ?? "-"
            throw ScenarioFailure("\(error); gateway: timeouts \(g.negotiationTimeouts), unreachable \(g.peerUnreachable), "
                + "no proposal \(g.noProposalChosen), auth \(g.authenticationFailed), refused \(g.negotiationRefused); "
                + "IKE engine: \(w.gw.ikeCounters.map { "\($0)" } ?? "-"); packet gateway: \(r)")
        }
    }

    static func strongSwanWorld(_ c: ScenarioContext) throws -> (EmulatedWorld, IKELabSession) {
        guard let lab = c.world.lab else { throw ScenarioSkipped(description: "needs --server strongswan") }
        return (c.world, lab)
    }

    /// A server CHILD_SA as the handset's pair: (its outbound SPI = the server's spi-in, inbound = spi-out).
    static func pairOnHandset(_ child: VICIMessage) -> (UInt32, UInt32)? {
        guard let o = child.string("spi-in").flatMap({ UInt32($0, radix: 16) }),
              let i = child.string("spi-out").flatMap({ UInt32($0, radix: 16) }) else { return nil }
        return (o, i)
    }

    /// The server's CHILD_SA holding the SPI the handset reported installing (either direction).
    static func serverChild(_ lab: IKELabSession, spiFromEvent m: AppClient.Message) throws -> VICIMessage {
        guard m.body.count >= 5 else { throw ScenarioFailure("'SA installed' without an SPI") }
        let spi = m.body[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let hex = String(format: "%08x", spi)
        let children = try lab.serverChildren()
        guard let child = children.first(where: { $0.string("spi-in") == hex || $0.string("spi-out") == hex }) else {
            let held = children.map { "\($0.string("spi-in") ?? "?")/\($0.string("spi-out") ?? "?")" }
            throw ScenarioFailure("the server holds no CHILD_SA with SPI \(hex) (it holds \(held))")
        }
        return child
    }

    /// IKE went through the packet gateway both ways, ESP both ways, nothing dropped for want of a socket.
    static func checkRelay(_ w: EmulatedWorld, needsIKE: Bool) throws {
        guard let r = w.sim.packetGatewayCounters else { throw ScenarioFailure("no packet gateway") }
        guard !needsIKE || (r.ikeToServer > 0 && r.ikeToProxy > 0) else {
            throw ScenarioFailure("IKE did not pass the packet gateway both ways: \(r)")
        }
        guard r.espToServer > 0, r.espToHandset > 0, r.droppedNoHandsetSocket == 0 else {
            throw ScenarioFailure("ESP did not pass the packet gateway both ways: \(r)")
        }
    }
}
