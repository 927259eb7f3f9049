import Foundation
import ProxyIKE
import Testing

/// ProxyIKE's VICI client against REAL stock charons (scripts/ike-lab): the proxy charon initiates to the server
/// while a second connection listens to the server's updown events.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct VICIClientLabTests {
    @Test func commandsStreamsAndEvents() throws {
        let lab = try IKELab()
        defer { lab.down() }
        let proxy = try VICIClient(path: lab["PROXY_VICI"])
        let version = try proxy.call("version")
        #expect(version.string("daemon") == "charon" && version.string("version")?.hasPrefix("5.") == true)

        // Unknown command and event: typed, and the connection stays in step.
        #expect(throws: VICIError.commandUnknown("no-such-command")) { try proxy.call("no-such-command") }
        #expect(throws: VICIError.eventUnknown("no-such-event")) { try proxy.register("no-such-event") }
        #expect(try proxy.call("version").string("daemon") == "charon")

        let events = try VICIClient(path: lab["SRV_VICI"])
        try events.register("ike-updown")
        try events.register("child-updown")

        let identity = "vici-test@handset.invalid", psk = "vici-lab-psk-\(UInt32.random(in: 0...UInt32.max))"
        try lab.serverLoadPSK(identity: identity, psk: psk)
        var shared = VICIMessage()
        shared.add("type", "IKE")
        shared.add("data", psk)
        shared.add("owners", list: [identity, lab["SRV_ID"]])
        #expect(try proxy.call("load-shared", shared).string("success") == "yes")
        var child = VICIMessage()
        child.add("local_ts", list: ["10.201.0.9/32"])
        child.add("remote_ts", list: ["10.200.0.1/32"])
        child.add("esp_proposals", list: ["aes256gcm16"])
        var children = VICIMessage(); children.add("t", section: child)
        var local = VICIMessage(); local.add("auth", "psk"); local.add("id", identity)
        var remote = VICIMessage(); remote.add("auth", "psk"); remote.add("id", lab["SRV_ID"])
        var conn = VICIMessage()
        conn.add("remote_addrs", list: [lab["SRV_ADDR"]])
        conn.add("remote_port", "4500")
        conn.add("proposals", list: ["aes256-sha256-x25519"])
        conn.add("local", section: local)
        conn.add("remote", section: remote)
        conn.add("children", section: children)
        var load = VICIMessage(); load.add("t", section: conn)
        #expect(try proxy.call("load-conn", load).string("success") == "yes")

        var go = VICIMessage()
        go.add("child", "t")
        go.add("timeout", "3000")
        let started = try proxy.stream("initiate", go, event: "control-log")
        #expect(started.response.string("success") == "yes")
        let log = started.events.compactMap { $0.string("msg") }
        #expect(log.contains { $0.contains("IKE_SA t[") && $0.contains("established") })
        #expect(log.contains { $0.contains("CHILD_SA t{") && $0.contains("established") })

        // The server saw both come up.
        var seen: [String: String] = [:]
        while seen.count < 2, let e = try events.nextEvent(timeout: 3) { seen[e.name] = e.message.string("up") }
        #expect(seen == ["ike-updown": "yes", "child-updown": "yes"])

        let sas = try proxy.stream("list-sas", event: "list-sa").events.flatMap { $0.sections }
        #expect(sas.count == 1 && sas.first?.name == "t" && sas.first?.section.string("state") == "ESTABLISHED")
        #expect(sas.first?.section.section("child-sas")?.sections.count == 1)

        var end = VICIMessage()
        end.add("ike", "t")
        end.add("timeout", "3000")
        let ended = try proxy.stream("terminate", end, event: "control-log")
        #expect(ended.response.string("success") == "yes")
        #expect(ended.events.contains { $0.string("msg")?.contains("deleting IKE_SA t[") == true })
        // Down events carry no `up` key.
        var down: Set<String> = []
        while down.count < 2, let e = try events.nextEvent(timeout: 3) {
            if e.message.string("up") == nil { down.insert(e.name) }
        }
        #expect(down == ["ike-updown", "child-updown"])
        #expect(try proxy.stream("list-sas", event: "list-sa").events.flatMap { $0.sections }.isEmpty)
        proxy.close()
        #expect(throws: VICIError.closed) { try proxy.call("version") }
    }
}
