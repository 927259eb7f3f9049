import Foundation
import Gateway
import HandsetCore
import ProxyIKE

/// Scenarios against the stock strongSwan server for what happens after the first SA: each ESP algorithm the server
/// may choose, its CHILD_SA rekey under traffic, its IKE_SA rekey, and a power cut of the handset mid-negotiation.
extension Scenario {
    static let strongSwanLifecycle: [Scenario] = [
        Scenario(name: "ike-aes128gcm16", summary: "server offers only aes128gcm16; handset-initiated SA, echo, counters agree",
                 run: { try Scenario.ikeAlgorithm($0, esp: "aes128gcm16", alg: "AES_GCM_16", keysize: "128") }),
        Scenario(name: "ike-aes256gcm16", summary: "server offers only aes256gcm16; handset-initiated SA, echo, counters agree",
                 run: { try Scenario.ikeAlgorithm($0, esp: "aes256gcm16", alg: "AES_GCM_16", keysize: "256") }),
        Scenario(name: "ike-chacha20poly1305",
                 summary: "server offers only chacha20poly1305; handset-initiated SA, echo, counters agree",
                 run: { try Scenario.ikeAlgorithm($0, esp: "chacha20poly1305", alg: "CHACHA20_POLY1305", keysize: nil) }),
        Scenario(name: "ike-server-rekey", summary: "the server rekeys the CHILD_SA under echo traffic; loss only in the SMS window",
                 run: ikeServerRekey),
        Scenario(name: "ike-proxy-rekey",
                 summary: "the proxy rekeys the server's CHILD_SA under echo traffic; its DELETE waits for the handset: nothing lost",
                 run: ikeProxyRekey),
        Scenario(name: "ike-ike-rekey", summary: "the server rekeys the IKE_SA; the handset gets nothing and keeps its SA",
                 run: ikeIKERekey),
        Scenario(name: "ike-power-cut", summary: "kill -9 of the handset while the proxy negotiates; it comes back and gets an SA",
                 run: ikePowerCut),
    ]

    // MARK: Algorithms

    /// The server's connection is reloaded with one ESP proposal; its SAs are deleted first, so the handset's next
    /// datagram makes a fresh key request and the proxy a fresh IKE_SA, whose CHILD_SA can only use that algorithm.
    static func ikeAlgorithm(_ c: ScenarioContext, esp: String, alg: String, keysize: String?) throws -> String {
        let (w, lab) = try strongSwanWorld(c)
        try c.loggedIn()
        try serverDeletesEverything(c, lab)
        try serverESPProposals(lab, esp)
        defer { try? serverESPProposals(lab, nil) }
        let st = try c.status()
        let text = "echo under \(esp)"
        let before = w.gw.counters.saDelivered
        c.app.datagram(to: serviceOctets, port: 7, from: 5100, Array(text.utf8))
        let installed = try explained(w) { try c.expect(0x84, "'SA installed'", timeout: 90) { $0.body.first == 5 } }
        _ = try c.expect(0x81, "the echo from 10.200.0.1:7") { Array($0.body.dropFirst(8)) == Array(text.utf8) }
        guard w.gw.counters.saDelivered > before else { throw ScenarioFailure("no SA was delivered") }
        let child = try serverChild(lab, spiFromEvent: installed)
        guard child.string("encr-alg") == alg, keysize == nil || child.string("encr-keysize") == keysize else {
            throw ScenarioFailure("the server chose \(child.string("encr-alg") ?? "?")-\(child.string("encr-keysize") ?? "?"), "
                                  + "not \(esp)")
        }
        // The server's own counters for that CHILD_SA equal the handset's: one datagram each way.
        let received = try c.status().espIn - st.espIn
        guard child.string("packets-in") == "1", child.string("packets-out") == "\(received)", received == 1 else {
            throw ScenarioFailure("server counted in/out \(child.string("packets-in") ?? "?")/\(child.string("packets-out") ?? "?"), "
                                  + "the handset sent 1 and received \(received)")
        }
        return "server CHILD_SA \(child.string("spi-in") ?? "?")/\(child.string("spi-out") ?? "?") \(alg)"
            + "\(keysize.map { "-\($0)" } ?? ""), server packets in/out 1/\(received) as the handset counted"
    }

    /// The server's `hs` connection again, with `esp` as its only ESP proposal (nil: the lab's own file).
    static func serverESPProposals(_ lab: IKELabSession, _ esp: String?) throws {
        var path = lab["SRV_SWANCTL"]
        if let esp {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
                guard line.trimmingCharacters(in: .whitespaces).hasPrefix("esp_proposals") else { return String(line) }
                return String(line.prefix { $0 == " " }) + "esp_proposals = \(esp)"
            }
            guard lines.joined(separator: "\n") != text else { throw ScenarioFailure("no esp_proposals in \(path)") }
            path = lab.dir.appendingPathComponent("srv-swanctl-\(esp).conf").path
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        try IKELabSession.run("/usr/bin/env", ["STRONGSWAN_CONF=\(lab["SRV_CONF"])", "/usr/sbin/swanctl", "--load-conns",
                                               "--file", path, "--uri", "unix://\(lab["SRV_VICI"])"])
    }

    /// The server deletes all its SAs; every pair it held leaves the handset (the proxy's delete, sa-delete by SMS).
    static func serverDeletesEverything(_ c: ScenarioContext, _ lab: IKELabSession) throws {
        let held = try lab.serverChildren().compactMap(pairOnHandset)
        lab.serverTerminate()
        try c.within(15, "the server to hold no CHILD_SA") { (try? lab.serverChildren().isEmpty) ?? false }
        for pair in held {
            try c.within(30, "the handset to drop the pair the server deleted") { (try? c.status(pair: pair).pair) == 0 }
        }
        c.app.drain()
    }

    // MARK: Rekeys

    /// Echo traffic at --rate; a few seconds in, the server rekeys its CHILD_SA (VICI `rekey`, as its rekey_time
    /// would). The server is the rekey initiator, so it sends on the new SA as soon as the proxy answers
    /// (charon 5.9.8 child_create.c: the initiator installs its outbound SA at once), while the handset gets the new
    /// keys only when the sa-transfer SMS arrives: replies the server sends in between cannot be opened and are
    /// lost. The scenario asserts what is true: every loss lies inside that window, each lost reply is one the
    /// handset dropped (its ESP drop counter), and after the handset installs the new SA nothing is lost; the
    /// server's counters for the new CHILD_SA agree with that.
    static func ikeServerRekey(_ c: ScenarioContext) throws -> String {
        let (_, lab) = try strongSwanWorld(c)
        let r = try rekeyUnderTraffic(c, lab) {
            var m = VICIMessage()
            m.add("child", "hs")
            _ = try lab.serverCall("rekey", m)
        }
        // Counters: each lost echo is a reply the server sent under the new SA before the handset had its keys; every
        // answer after the rekey left on exactly one of the two SAs.
        guard r.dropped == r.lost.count, r.serverOut + r.oldOutAfterRekey == r.answeredAfterRekey + r.lost.count else {
            throw ScenarioFailure("lost \(r.lost.count), handset dropped \(r.dropped) ESP packets, server sent \(r.serverOut) "
                                  + "on the new SA and \(r.oldOutAfterRekey) more on the old, \(r.answeredAfterRekey) answered after the rekey")
        }
        return String(format: "%d echoes, %d lost, all in the %.1f s between the server's rekey and the handset's install "
                      + "(sa-transfer by SMS); handset dropped %d, server out on the new SA %d = %d answered + %d lost - %d "
                      + "answered on the old SA before the server switched",
                      r.sent, r.lost.count, r.installedAt - r.rekeyAt, r.dropped, r.serverOut, r.answeredAfterRekey,
                      r.lost.count, r.oldOutAfterRekey)
    }

    /// The same traffic, but the proxy charon rekeys the server's CHILD_SA (VICI `rekey` on the proxy, as its
    /// rekey_time would). The server, as rekey responder, keeps sending on the old SA until the proxy's DELETE
    /// (child_delete.c installs its outbound SA then); the plugin holds that DELETE until the handset's sa-ack
    /// reaches the gateway (hold_rekey), so nothing is lost either way.
    static func ikeProxyRekey(_ c: ScenarioContext) throws -> String {
        let (_, lab) = try strongSwanWorld(c)
        let logBefore = (try? String(contentsOfFile: lab["PROXY_LOG"], encoding: .utf8))?.utf8.count ?? 0
        let r = try rekeyUnderTraffic(c, lab) {
            let v = try VICIClient(path: lab["PROXY_VICI"])
            defer { v.close() }
            let ids = try v.stream("list-sas", event: "list-sa", timeout: 5).events.flatMap {
                $0.sections.flatMap { $0.section.section("child-sas")?.sections.compactMap { $0.section.string("uniqueid") } ?? [] }
            }
            guard ids.count == 1 else { throw ScenarioFailure("the proxy holds \(ids.count) CHILD_SAs, expected 1") }
            var m = VICIMessage()
            m.add("child-id", ids[0])
            let answer = try v.call("rekey", m)
            guard answer.string("success") == "yes" else { throw ScenarioFailure("proxy rekey: \(answer.string("errmsg") ?? "?")") }
        }
        // The server answers on the old SA until the DELETE, then on the new one: at most every answer after the rekey.
        guard r.lost.isEmpty, r.dropped == 0, r.serverOut > 0, r.serverOut <= r.answeredAfterRekey else {
            throw ScenarioFailure("lost \(r.lost.count) (at \(r.lost) s, rekey at \(r.rekeyAt) s), handset dropped \(r.dropped), "
                                  + "server sent \(r.serverOut) on the new SA, \(r.answeredAfterRekey) answered after the rekey")
        }
        let log = String(decoding: ((try? String(contentsOfFile: lab["PROXY_LOG"], encoding: .utf8)) ?? "").utf8.dropFirst(logBefore),
                         as: UTF8.self)
        guard let held = log.split(separator: "\n").first(where: { $0.contains("handset-proxy: rekey held") }),
              held.contains("the handset has the new SA") else {
            throw ScenarioFailure("the proxy did not hold its DELETE for the handset (hold_rekey)")
        }
        let ms = held.split(separator: " ").drop { $0 != "held" }.dropFirst().first.map(String.init) ?? "?"
        return "\(r.sent) echoes, none lost; the proxy's DELETE waited \(ms) ms for the handset's sa-ack; handset dropped 0; "
            + "server out on the new SA \(r.serverOut) of \(r.answeredAfterRekey) answered after the rekey"
    }

    struct RekeyRun {
        /// oldOutAfterRekey: what the server still sent on the old CHILD_SA after `rekey` returned (VICI `rekey`
        /// only queues the exchange, so an answer may leave on the old SA before the server switches).
        var sent = 0, answeredAfterRekey = 0, dropped = 0, serverOut = 0, oldOutAfterRekey = 0
        var rekeyAt = 0.0, installedAt = 0.0
        var lost: [Double] = []
    }

    /// Echo ticks at --rate for --duration; `rekey` runs 2 s in. Checks what holds for any rekey: the handset
    /// installed the server's new CHILD_SA, the old pair left the handset and the new one stays, and every loss lies
    /// between the rekey and the handset's install. The caller checks the counters.
    static func rekeyUnderTraffic(_ c: ScenarioContext, _ lab: IKELabSession, rekey: () throws -> Void) throws -> RekeyRun {
        let w = c.world
        try c.loggedIn()
        // An SA for the echo flow, whatever the scenarios before left.
        _ = try explained(w) { try serviceEcho(c, "before the rekey", sport: 5200, timeout: 90) }
        let old = try liveServerChildren(lab)
        guard old.count == 1, let oldPair = pairOnHandset(old[0]) else {
            throw ScenarioFailure("the server holds \(old.count) CHILD_SAs, expected the one of the echo flow")
        }
        let st = try c.status()
        let pushed = w.gw.counters.saPushed
        let start = Date()
        var r = RekeyRun()
        var rekeyAt: Double?, installedAt: Double?, newSPI: UInt32?
        // What the server sent on the old SA, from the sequence numbers on the wire: its own packets-out for an SA
        // it has replaced stays at the last value it queried from kernel-libipsec, short of a late answer.
        var oldOutAtRekey: Int?
        while Date().timeIntervalSince(start) < c.duration {
            let at = Date().timeIntervalSince(start)
            if rekeyAt == nil && at >= 2 {
                oldOutAtRekey = w.capture.lastSequence(spi: oldPair.1)
                try rekey()
                rekeyAt = Date().timeIntervalSince(start)
            }
            r.sent += 1
            if (try? serviceEcho(c, "tick \(r.sent)", sport: 5201, timeout: 3)) != nil {
                if rekeyAt != nil { r.answeredAfterRekey += 1 }
            } else {
                r.lost.append(at)
            }
            while let e = c.app.wait(timeout: 0, { $0.op == 0x84 && $0.body.first == 5 }) {
                if installedAt == nil && rekeyAt != nil {
                    installedAt = Date().timeIntervalSince(start)
                    newSPI = ScenarioContext.spi(e)
                }
            }
            Thread.sleep(forTimeInterval: 1 / c.rate)
        }
        guard let rekeyAt else { throw ScenarioFailure("no rekey was started") }
        guard let installedAt, let newSPI else {
            throw ScenarioFailure("the handset installed no SA after the rekey (pushed \(w.gw.counters.saPushed - pushed))")
        }
        guard w.gw.counters.saPushed > pushed else { throw ScenarioFailure("the rekeyed SA was not pushed") }
        let now = try liveServerChildren(lab)
        guard now.count == 1, let newPair = pairOnHandset(now[0]), newPair != oldPair,
              newPair.0 == newSPI || newPair.1 == newSPI else {
            throw ScenarioFailure("the server holds \(now.compactMap(pairOnHandset)) after the rekey, the handset installed "
                                  + String(format: "%08x", newSPI))
        }
        // Every loss lies between the rekey and the handset's install.
        guard r.lost.allSatisfy({ $0 >= rekeyAt - 0.1 && $0 <= installedAt + 0.1 }) else {
            throw ScenarioFailure("echoes lost outside the SMS window \(rekeyAt)-\(installedAt) s: \(r.lost)")
        }
        // The old pair leaves the handset once the proxy charon drops it (delete_rekeyed_delay), the new one stays.
        try c.within(30, "the handset to drop the rekeyed pair") { (try? c.status(pair: oldPair).pair) == 0 }
        guard (try c.status(pair: newPair)).pair == 3 else { throw ScenarioFailure("the new pair is not installed") }
        r.dropped = try c.status().espDropped - st.espDropped
        r.serverOut = Int(now[0].string("packets-out") ?? "") ?? -1
        guard let oldOutAtRekey else { throw ScenarioFailure("the old CHILD_SA's counters were not read") }
        r.oldOutAfterRekey = w.capture.lastSequence(spi: oldPair.1) - oldOutAtRekey
        r.rekeyAt = rekeyAt
        r.installedAt = installedAt
        return r
    }

    /// The server rekeys its IKE_SA. Nothing reaches the handset (no SMS, no push, no delete), its pair stays, and
    /// the echo keeps using the same CHILD_SA.
    static func ikeIKERekey(_ c: ScenarioContext) throws -> String {
        let (w, lab) = try strongSwanWorld(c)
        try c.loggedIn()
        _ = try explained(w) { try serviceEcho(c, "before the IKE rekey", sport: 5300, timeout: 90) }
        let children = try liveServerChildren(lab)
        guard let child = children.first, let pair = pairOnHandset(child) else { throw ScenarioFailure("no CHILD_SA") }
        let spis = try serverIKESPIs(lab)
        let smsDown = w.snapshot.smsDown, pushed = w.gw.counters.saPushed, delivered = w.gw.counters.saDelivered
        let ike = w.gw.ikeCounters
        var m = VICIMessage()
        m.add("ike", "hs")
        _ = try lab.serverCall("rekey", m)
        try c.within(10, "the server's IKE_SA to have new SPIs") {
            let now = (try? serverIKESPIs(lab)) ?? []
            return !now.isEmpty && Set(now).isDisjoint(with: spis)
        }
        _ = try serviceEcho(c, "after the IKE rekey", sport: 5300, timeout: 10)
        Thread.sleep(forTimeInterval: 1)
        guard w.snapshot.smsDown == smsDown, w.gw.counters.saPushed == pushed,
              w.gw.counters.saDelivered == delivered, w.gw.ikeCounters == ike else {
            throw ScenarioFailure("the IKE rekey reached the handset: SMS down \(w.snapshot.smsDown - smsDown), pushed "
                                  + "\(w.gw.counters.saPushed - pushed), IKE engine \(String(describing: w.gw.ikeCounters))")
        }
        guard (try c.status(pair: pair)).pair == 3 else { throw ScenarioFailure("the handset lost its pair") }
        let now = try liveServerChildren(lab)
        guard now.count == 1, pairOnHandset(now[0]).map({ $0 == pair }) == true,
              let was = Int(child.string("packets-in") ?? ""), Int(now[0].string("packets-in") ?? "") == was + 1 else {
            throw ScenarioFailure("the echo did not use the same CHILD_SA: \(now.compactMap(pairOnHandset)) vs \(pair)")
        }
        return "IKE_SA \(spis.joined(separator: "/")) rekeyed; no SMS, no push; echo over the same CHILD_SA "
            + String(format: "%08x/%08x", pair.0, pair.1)
    }

    // MARK: Power cut

    /// The server's SAs are deleted, the handset asks for a key, and the firmware is killed the moment the
    /// gateway has its key request (the proxy charon is negotiating, or the sa-transfer is on its way). The
    /// restarted firmware logs in (the login makes the proxy delete the device's IKE_SA at the server), asks again
    /// and gets an SA; the server then holds exactly that one CHILD_SA, and its counters equal the new process's.
    static func ikePowerCut(_ c: ScenarioContext) throws -> String {
        let (w, lab) = try strongSwanWorld(c)
        try c.loggedIn()
        try serverDeletesEverything(c, lab)
        let received = w.gw.counters.received, rotations = w.gw.counters.rotations
        let established = w.gw.ikeCounters?.established ?? 0
        c.app.datagram(to: serviceOctets, port: 7, from: 5400, Array("cut".utf8))
        try c.within(60, "the gateway to get the key request") { w.gw.counters.received > received }
        let negotiated = (w.gw.ikeCounters?.established ?? 0) > established
        try w.powerCycleFirmware(path: c.firmware, qemu: c.qemu)
        try c.within(90, "the restarted firmware to log in") { w.gw.counters.rotations > rotations }
        c.app.hello()
        var reply: String?
        let end = Date().addingTimeInterval(90)
        while reply == nil && Date() < end { reply = try? serviceEcho(c, "after the cut", sport: 5401, timeout: 5) }
        guard reply != nil else { throw ScenarioFailure("no echo after the restart") }
        try c.within(10, "the server to hold one CHILD_SA") { ((try? lab.serverChildren()) ?? []).count == 1 }
        let child = try lab.serverChildren()[0]
        guard let pair = pairOnHandset(child), (try c.status(pair: pair)).pair == 3 else {
            throw ScenarioFailure("the handset does not hold the server's CHILD_SA \(String(describing: pairOnHandset(child)))")
        }
        // The restarted process counts from zero: everything the server sent on this SA, it received.
        let espIn = try c.status().espIn
        guard child.string("packets-out") == "\(espIn)" else {
            throw ScenarioFailure("server sent \(child.string("packets-out") ?? "?") on the SA, the handset received \(espIn)")
        }
        return "cut \(negotiated ? "after the proxy negotiated (sa-transfer in flight)" : "while the proxy negotiated"); "
            + "after login the server holds one CHILD_SA " + String(format: "%08x/%08x", pair.0, pair.1)
            + ", the handset's; server out \(espIn) = handset in"
    }

    // MARK: Helpers

    /// One echo round trip to the service behind the server; returns the reply text.
    static func serviceEcho(_ c: ScenarioContext, _ text: String, sport: UInt16, timeout: Double) throws -> String {
        c.app.datagram(to: serviceOctets, port: 7, from: sport, Array(text.utf8))
        let m = try c.expect(0x81, "the echo of '\(text)'", timeout: timeout) { Array($0.body.dropFirst(8)) == Array(text.utf8) }
        return String(decoding: m.body.dropFirst(8), as: UTF8.self)
    }

    /// The server's CHILD_SAs but those a rekey left in DELETED (kept delete_rekeyed_delay for late packets).
    static func liveServerChildren(_ lab: IKELabSession) throws -> [VICIMessage] {
        try lab.serverChildren().filter { $0.string("state") != "DELETED" }
    }

    /// The server's IKE_SAs as "initiator-spi/responder-spi".
    static func serverIKESPIs(_ lab: IKELabSession) throws -> [String] {
        let v = try VICIClient(path: lab["SRV_VICI"])
        defer { v.close() }
        let events = try v.stream("list-sas", event: "list-sa", timeout: 5).events
        return events.flatMap { $0.sections.map { "\($0.section.string("initiator-spi") ?? "?")/\($0.section.string("responder-spi") ?? "?")" } }
    }
}
