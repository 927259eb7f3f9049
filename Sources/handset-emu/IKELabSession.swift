import Foundation
import Gateway
import HandsetCore
import ModemSim
import ProxyIKE

/// scripts/ike-lab for `run --server strongswan`: a stock strongSwan server in its own network namespace (UDP echo
/// on 10.200.0.1:7 behind it) and the gateway's proxy charon with our plugin. The server is driven only through its
/// VICI socket (credentials, initiate, terminate, list-sas); nothing of ours runs in its namespace.
final class IKELabSession: @unchecked Sendable {
    let dir: URL
    let script: String
    /// A user's own server settings (`--server-config`): the server loads them instead of the lab's conn `hs`.
    let serverConfig: IKEServerConfig?
    private(set) var env: [String: String] = [:]

    /// Why the lab cannot run here (so the strongSwan scenarios are skipped), or nil.
    static func unavailableReason(script: String) -> String? {
        if getuid() != 0 { return "needs root (network namespaces, charon)" }
        if !FileManager.default.isExecutableFile(atPath: script) { return "\(script) missing" }
        for f in ["/usr/lib/ipsec/charon", "/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so", "/usr/sbin/swanctl"]
        where !FileManager.default.fileExists(atPath: f) {
            return "\(f) missing (run scripts/setup)"
        }
        return nil
    }

    /// The script beside this checkout: `IKE_LAB`, else scripts/ike-lab from the working directory or above the tool.
    static func defaultScript(tool: String) -> String {
        if let s = ProcessInfo.processInfo.environment["IKE_LAB"] { return s }
        let here = FileManager.default.currentDirectoryPath + "/scripts/ike-lab"
        if FileManager.default.isExecutableFile(atPath: here) { return here }
        // .build/debug/handset-emu -> checkout/scripts/ike-lab
        let up = URL(fileURLWithPath: tool).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return up.appendingPathComponent("scripts/ike-lab").path
    }

    init(script: String, dir: URL, serverConfig: IKEServerConfig? = nil) throws {
        self.script = script
        self.dir = dir
        self.serverConfig = serverConfig
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.run("/bin/bash", [script, "up", dir.path] + (serverConfig.map { [$0.dir.path] } ?? []))
        let text = try String(contentsOf: dir.appendingPathComponent("lab.env"), encoding: .utf8)
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { env[String(kv[0])] = String(kv[1]) }
        }
        // Nothing may go to 10.x unless the route is the lab's own veth.
        let route = (try? Self.run("/usr/sbin/ip", ["route", "get", self["SRV_ADDR"]])) ?? ""
        guard !self["VETH_PUB"].isEmpty, route.contains("dev \(self["VETH_PUB"]) ") else {
            down()
            throw WorldError("ike-lab: the route to \(self["SRV_ADDR"]) is not via the lab's veth: \(route)")
        }
    }

    subscript(key: String) -> String { env[key] ?? "" }

    /// The server's IKE identity: the user's (`proxy.conf`), else the lab's.
    var serverID: String { serverConfig?.serverID ?? self["SRV_ID"] }

    /// The proxy's CHILD_SA rekey_time: the user's (`proxy.conf`), else the default, which is below the lab
    /// server's `rekey_time = 1h` (scripts/ike-lab) so the proxy rekeys first.
    var proxyRekeyTime: UInt32 { serverConfig?.rekeyTime ?? StrongSwanNegotiator.Configuration.defaultRekeyTime }

    func down() { _ = try? Self.run("/bin/bash", [script, "down", dir.path]) }

    /// The packet gateway in front of the handset: public = the lab's root-side veth address, port 4500.
    func packetGateway(proxySidePort: Int) -> PacketGatewayConfig {
        PacketGatewayConfig(publicEndpoint: UDPPeer(host: self["PUB_ADDR"], port: 4500),
                            ikeProxy: UDPPeer(host: "127.0.0.1", port: Int(self["PROXY_NATT_PORT"]) ?? 0),
                            oppositeParty: UDPPeer(host: self["SRV_ADDR"], port: 4500), proxySidePort: proxySidePort)
    }

    // MARK: The server's VICI

    func serverCall(_ command: String, _ m: VICIMessage = VICIMessage(), timeout: Double = 10) throws -> VICIMessage {
        let v = try VICIClient(path: self["SRV_VICI"])
        defer { v.close() }
        let r = try v.call(command, m, timeout: timeout)
        if let ok = r.string("success"), ok != "yes" {
            throw WorldError("server \(command): \(r.string("errmsg") ?? "failed")")
        }
        return r
    }

    /// The server's copy of one device's PSK (as a user's swanctl.conf `secrets` would hold it).
    func serverLoadPSK(identity: String, psk: [UInt8]) throws {
        var m = VICIMessage()
        m.add("id", "psk-\(identity)")
        m.add("type", "IKE")
        m.add("data", bytes: psk)
        m.add("owners", list: [self["SRV_ID"], identity])
        _ = try serverCall("load-shared", m)
    }

    /// The server starts its connection `hs` toward the handset's public address (swanctl --initiate).
    func serverInitiate() throws {
        var m = VICIMessage()
        m.add("child", "hs")
        m.add("ike", "hs")
        m.add("timeout", "8000")
        _ = try serverCall("initiate", m, timeout: 12)
    }

    /// The server deletes its IKE_SAs of `hs` (and their CHILD_SAs), telling the proxy (swanctl --terminate).
    func serverTerminate() {
        var m = VICIMessage()
        m.add("ike", "hs")
        m.add("timeout", "5000")
        _ = try? serverCall("terminate", m, timeout: 8)
    }

    /// Every CHILD_SA the server holds, as list-sas reports it (spi-in, bytes-in, packets-out, ...).
    func serverChildren() throws -> [VICIMessage] {
        let v = try VICIClient(path: self["SRV_VICI"])
        defer { v.close() }
        let events = try v.stream("list-sas", event: "list-sa", timeout: 5).events
        return events.flatMap { $0.sections.flatMap { $0.section.section("child-sas")?.sections.map(\.section) ?? [] } }
    }

    /// Runs a tool to completion, its output in a file. posix_spawn + waitpid: Foundation's Process missed the exit
    /// of scripts/ike-lab (its daemons outlive it) and waited for ever.
    @discardableResult
    static func run(_ tool: String, _ args: [String]) throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ike-lab-\(UUID().uuidString).out").path
        defer { unlink(out) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([tool] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard rc == 0 else { throw WorldError("\(tool): cannot start (\(String(cString: strerror(rc))))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let exited = status & 0x7F == 0, code = (status >> 8) & 0xFF
        guard exited && code == 0 else { throw WorldError("\(tool) \(args.joined(separator: " ")): \(text)") }
        return text
    }

    /// A free UDP port on 127.0.0.1 (for the packet gateway's proxy side, which the proxy's connections name).
    static func freeUDPPort() -> Int {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(s) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len); return getsockname(s, $0, &len) }
        }
        return Int(UInt16(bigEndian: a.sin_port))
    }
}
