import Foundation
import ProxyIKE

/// scripts/ike-lab (issue 15): a stock strongSwan server in a netns and the proxy charon with our plugin.
/// `IKE_LAB` may name another copy of the script.
final class IKELab {
    let dir: URL
    let env: [String: String]

    static let script: String = ProcessInfo.processInfo.environment["IKE_LAB"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/ike-lab").path

    /// Why the lab cannot run here, or nil.
    static let unavailable: String? = {
        if getuid() != 0 { return "needs root (network namespaces, charon)" }
        if !FileManager.default.isExecutableFile(atPath: script) { return "\(script) missing" }
        if !FileManager.default.fileExists(atPath: "/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so") {
            return "handset-proxy plugin not built (scripts/setup)"
        }
        return nil
    }()

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ikelab-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.run(["up", dir.path])
        let text = try String(contentsOf: dir.appendingPathComponent("lab.env"), encoding: .utf8)
        var e: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { e[String(kv[0])] = String(kv[1]) }
        }
        env = e
        // Never send to 10.x unless the route goes through the lab's own veth.
        let route = try Self.output("/usr/sbin/ip", ["route", "get", e["SRV_ADDR"] ?? "?"])
        guard route.contains("dev \(e["VETH_PUB"] ?? "?") ") else {
            down()
            throw LabError(description: "route to the server is not via the lab's veth: \(route)")
        }
    }

    func down() {
        try? Self.run(["down", dir.path])
        try? FileManager.default.removeItem(at: dir)
    }

    subscript(key: String) -> String { env[key] ?? "" }

    /// The last lines of one of the lab's logs, for failure messages.
    func tail(_ key: String, lines: Int = 60) -> String {
        let text = (try? String(contentsOfFile: self[key], encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    struct LabError: Error, CustomStringConvertible { var description: String }

    static func run(_ args: [String]) throws {
        let out = try output("/bin/bash", [script] + args)
        _ = out
    }

    /// Runs a tool and returns its output. posix_spawn + waitpid: Foundation's Process can miss the exit of a
    /// child that left daemons behind (ike-lab does).
    @discardableResult
    static func output(_ tool: String, _ args: [String]) throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ikelab-out-\(UUID().uuidString)").path
        defer { unlink(out) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([tool] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard rc == 0 else { throw LabError(description: "spawn \(tool): \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status == 0 else { throw LabError(description: "\(tool) \(args.joined(separator: " ")): status \(status): \(text)") }
        return text
    }

    // MARK: the server's VICI

    func serverCall(_ command: String, _ m: VICIMessage = VICIMessage()) throws -> VICIMessage {
        let v = try VICIClient(path: self["SRV_VICI"])
        defer { v.close() }
        return try v.call(command, m, timeout: 5)
    }

    func serverLoadPSK(identity: String, psk: String) throws {
        var m = VICIMessage()
        m.add("id", "psk-\(identity)")
        m.add("type", "IKE")
        m.add("data", psk)
        m.add("owners", list: [self["SRV_ID"], identity])
        try serverCallChecked("load-shared", m)
    }

    /// A server call whose answer must say success.
    func serverCallChecked(_ command: String, _ m: VICIMessage = VICIMessage()) throws {
        let r = try serverCall(command, m)
        guard r.string("success") == "yes" else { throw LabError(description: "server \(command): \(r.string("errmsg") ?? "")") }
    }

    /// Loads a server connection `name` between the lab's addresses, with one child of the same name.
    func serverLoadConn(_ name: String, local: VICIMessage, remote: VICIMessage, child: VICIMessage, pools: [String] = []) throws {
        var children = VICIMessage()
        children.add(name, section: child)
        var conn = VICIMessage()
        conn.add("version", "2")
        conn.add("local_addrs", list: [self["SRV_ADDR"]])
        conn.add("remote_addrs", list: [self["PUB_ADDR"]])
        conn.add("proposals", list: ["aes256-sha256-x25519"])
        if !pools.isEmpty { conn.add("pools", list: pools) }
        conn.add("local", section: local)
        conn.add("remote", section: remote)
        conn.add("children", section: children)
        var m = VICIMessage()
        m.add(name, section: conn)
        try serverCallChecked("load-conn", m)
    }

    /// The server's IKE_SAs as list-sas streams them: (connection name, IKE_SA section).
    func serverSAs() throws -> [(name: String, sa: VICIMessage)] {
        let v = try VICIClient(path: self["SRV_VICI"])
        defer { v.close() }
        return try v.stream("list-sas", event: "list-sa", timeout: 5).events.flatMap { $0.sections.map { ($0.name, $0.section) } }
    }

    /// Every CHILD_SA the server holds.
    func serverChildren() throws -> [VICIMessage] {
        try serverSAs().flatMap { $0.sa.section("child-sas")?.sections.map(\.section) ?? [] }
    }
}
