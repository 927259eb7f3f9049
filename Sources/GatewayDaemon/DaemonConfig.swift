import Foundation
import Gateway
import HandsetCore
import Logging

/// The daemon's configuration: `key = value` lines and `#` comments, as the firmware's (docs/gateway.md).
/// Validated whole before anything starts; every error names the file, the line, the key and what is allowed.
public struct DaemonConfig: Sendable, Equatable {
    public enum LogFormat: String, Sendable, Equatable { case text, json }
    public enum Negotiator: Sendable, Equatable {
        case emulated
        case strongswan(StrongSwanSettings)
        /// Over the back-end socket (`backend_socket`, `backend_timeout`).
        case socket(path: String, timeout: Double)
    }
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: UInt16
        public init(host: String, port: UInt16) { self.host = host; self.port = port }
    }
    public struct StrongSwanSettings: Sendable, Equatable {
        public var viciSocket = "", keySocket = "", serverAddress = "", serverID = "", ikeRemote = ""
        public var ikeRemotePort: UInt16 = 4500
        /// PEM file of the CA the server's certificate must chain to ("": the server authenticates with the PSK).
        public var serverCA = ""
        public var virtualIP = false
        /// The proxy charon's NAT-T port (its `port_nat_t`; 0: charon's choice). Behind a packet gateway, IKE must
        /// carry the non-ESP marker from the first message, so the connections name this port.
        public var ikeLocalPort: UInt16 = 0
        /// Where the handset sends its ESP at the server (the server's NAT-T port).
        public var serverESPPort: UInt16 = 4500
        /// The proxy's CHILD_SA rekey_time (StrongSwanNegotiator.Configuration.rekeyTime): below the server's.
        public var rekeyTime: UInt32 = 2700
    }

    /// The registry as written (a bare path taken from the config's directory): for logs. It holds no password.
    public var registry = ""
    /// The store `registry` names, parsed and checked: `sqlite:PATH` (or a bare path) or `postgres://…`.
    public var registryStore = RegistryStoreSpec.sqlite(path: "")
    public var kek = ""
    public var smppHost = "127.0.0.1"
    public var smppPort = 2775
    public var smppSystemID = ""
    /// Read from `smpp_password_file` at load; never written in the config itself.
    public var smppPassword = ""
    public var smppPasswordFile = ""
    public var gatewayNumber = ""
    /// Where key-delegation datagrams come in; nil: no UDP carriage.
    public var udpListen: Endpoint?
    public var negotiator = Negotiator.emulated
    public var logLevel = Logger.Level.info
    public var logFormat = LogFormat.text
    public var httpListen = Endpoint(host: "127.0.0.1", port: 9464)
    /// Incomplete concatenated uplinks: how many at once, and how long one may wait for its other parts.
    public var reassemblyLimit = 64
    public var reassemblyTimeout: Double = 60
    /// On SIGTERM: how long in-flight messages and queued downlinks may take before the daemon unbinds anyway.
    public var drainTimeout: Double = 10
    /// Devices handled at once (one thread each); past it, devices with work wait for a free worker.
    public var deviceWorkers = 64
    /// Lifetimes of the SAs handed out when the peer sets none (seconds).
    public var saSoftSeconds: UInt32 = 3000
    public var saHardSeconds: UInt32 = 3600
    /// Secret data, fetch, the back-end socket and the admin routes (DaemonConfig+Services.swift).
    public var services = ServiceSettings()

    public init() {}
}

public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var file: String
    /// 0: the file as a whole (a required key missing, the file unreadable).
    public var line: Int
    public var key: String
    public var reason: String

    public var description: String {
        line == 0 ? "\(file): \(key.isEmpty ? "" : "\(key): ")\(reason)" : "\(file):\(line): \(key): \(reason)"
    }
}

extension DaemonConfig {
    /// Every key `parse` knows, with what it allows (for errors and --help).
    public static let keys: [(key: String, allowed: String)] = [
        ("registry", "sqlite:PATH (or a bare PATH) or postgres://USER@HOST:PORT/DB?password_file=PATH (required)"),
        ("kek", "path of the 32-byte key-encryption key file, mode 0600 (required)"),
        ("smpp_host", "host name or IPv4 address of the SMS centre"),
        ("smpp_port", "1-65535"),
        ("smpp_system_id", "1-15 characters (required)"),
        ("smpp_password_file", "path of a file holding the SMPP password, 1-8 characters (required)"),
        ("gateway_number", "the gateway's MSISDN or short code: + and 3-20 digits (required)"),
        ("udp_listen", "ADDRESS:PORT for key-delegation datagrams, or off"),
        ("negotiator", "strongswan, socket (over backend_socket) or emulated (an emulated peer, for tests) (required)"),
        ("strongswan_vici", "path of charon's VICI socket"),
        ("strongswan_key_socket", "path of the key socket of our charon plugin"),
        ("strongswan_server", "the IPsec server's IPv4 address"),
        ("strongswan_server_id", "the IPsec server's IKE identity"),
        ("strongswan_ike_remote", "ADDRESS:PORT where the proxy sends IKE"),
        ("strongswan_server_ca", "PEM file of the CA the server's certificate must chain to (absent: PSK)"),
        ("strongswan_virtual_ip", "yes or no: ask for the device's inner address from the server's pool"),
        ("strongswan_ike_local_port", "1-65535: the proxy charon's port_nat_t, where its IKE leaves (absent: charon's choice)"),
        ("strongswan_server_esp_port", "1-65535: the server's port for the handset's ESP (default 4500)"),
        ("strongswan_rekey_time", "60-86400 seconds: the proxy's CHILD_SA rekey_time, below the server's (default 2700)"),
        ("log_level", "trace, debug, info, notice, warning, error or critical"),
        ("log_format", "text or json"),
        ("http_listen", "ADDRESS:PORT for /metrics, /health and /ready"),
        ("reassembly_limit", "1-4096 incomplete concatenated messages"),
        ("reassembly_timeout", "1-3600 seconds"),
        ("drain_timeout", "0-300 seconds"),
        ("device_workers", "1-4096 devices handled at once"),
        ("sa_soft_seconds", "60-86400 seconds, below sa_hard_seconds"),
        ("sa_hard_seconds", "60-86400 seconds, above sa_soft_seconds"),
    ] + serviceKeys

    static func allowed(_ key: String) -> String { keys.first { $0.key == key }?.allowed ?? "" }

    /// Reads and validates `path`; relative paths in it are taken from the config file's directory.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: 0, key: "", reason: "cannot read the file: \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, key: "", reason: "not UTF-8 text")
        }
        let base = (path as NSString).deletingLastPathComponent
        return try parse(text, file: path, baseDirectory: base.isEmpty ? "." : base)
    }

    public static func parse(_ text: String, file: String, baseDirectory: String = ".") throws(ConfigError) -> DaemonConfig {
        var c = DaemonConfig()
        var seen: [String: Int] = [:]
        var strongswan = StrongSwanSettings()
        var wantsStrongSwan = false
        var fetchSettings: (ca: String?, timeout: Double) = (nil, 10)
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : baseDirectory + "/" + p }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = content.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw ConfigError(file: file, line: line, key: trimmed, reason: "expected `key = value`")
            }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            func fail(_ why: String? = nil) -> ConfigError {
                ConfigError(file: file, line: line, key: key, reason: (why.map { $0 + "; " } ?? "") + "allowed: " + allowed(key))
            }
            guard keys.contains(where: { $0.key == key }) else {
                throw ConfigError(file: file, line: line, key: key,
                                  reason: "unknown key; known keys: " + keys.map(\.key).joined(separator: ", "))
            }
            if let first = seen[key] {
                throw ConfigError(file: file, line: line, key: key, reason: "given twice (first on line \(first))")
            }
            seen[key] = line
            guard !value.isEmpty else { throw fail("empty value") }
            switch key {
            case "registry": (c.registry, c.registryStore) = try registryStore(value, resolve: resolve, fail: fail)
            case "kek": c.kek = resolve(value)
            case "smpp_host": c.smppHost = value
            case "smpp_port":
                guard let p = UInt16(value), p > 0 else { throw fail() }
                c.smppPort = Int(p)
            case "smpp_system_id":
                guard value.utf8.count <= 15 else { throw fail("too long") }
                c.smppSystemID = value
            case "smpp_password_file":
                c.smppPasswordFile = resolve(value)
                c.smppPassword = try readPassword(c.smppPasswordFile, fail: fail)
            case "gateway_number":
                let digits = value.hasPrefix("+") ? value.dropFirst() : Substring(value)
                guard (3...20).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { throw fail() }
                c.gatewayNumber = value
            case "udp_listen":
                if value == "off" { c.udpListen = nil } else {
                    guard let a = hostPort(value) else { throw fail() }
                    c.udpListen = a
                }
            case "negotiator":
                switch value {
                case "emulated": wantsStrongSwan = false
                case "strongswan": wantsStrongSwan = true
                case "socket": wantsStrongSwan = false; c.negotiator = .socket(path: "", timeout: 0)  // filled in by checkServices
                default: throw fail()
                }
            case "strongswan_vici": strongswan.viciSocket = resolve(value)
            case "strongswan_key_socket": strongswan.keySocket = resolve(value)
            case "strongswan_server":
                guard IPAddress(dottedQuad: value) != nil else { throw fail() }
                strongswan.serverAddress = value
            case "strongswan_server_id": strongswan.serverID = value
            case "strongswan_ike_remote":
                guard let a = hostPort(value) else { throw fail() }
                strongswan.ikeRemote = a.host
                strongswan.ikeRemotePort = a.port
            case "strongswan_server_ca":
                let path = resolve(value)
                guard let pem = FileManager.default.contents(atPath: path),
                      String(decoding: pem, as: UTF8.self).contains("BEGIN CERTIFICATE") else {
                    throw fail("no PEM certificate readable at \(path)")
                }
                strongswan.serverCA = path
            case "strongswan_virtual_ip":
                guard value == "yes" || value == "no" else { throw fail() }
                strongswan.virtualIP = value == "yes"
            case "strongswan_ike_local_port", "strongswan_server_esp_port":
                guard let p = UInt16(value), p > 0 else { throw fail() }
                if key == "strongswan_ike_local_port" { strongswan.ikeLocalPort = p } else { strongswan.serverESPPort = p }
            case "strongswan_rekey_time":
                guard let s = UInt32(value), (60...86400).contains(s) else { throw fail() }
                strongswan.rekeyTime = s
            case "log_level":
                guard let l = Logger.Level(rawValue: value) else { throw fail() }
                c.logLevel = l
            case "log_format":
                guard let f = LogFormat(rawValue: value) else { throw fail() }
                c.logFormat = f
            case "http_listen":
                guard let a = hostPort(value) else { throw fail() }
                c.httpListen = a
            case "reassembly_limit":
                guard let n = Int(value), (1...4096).contains(n) else { throw fail() }
                c.reassemblyLimit = n
            case "reassembly_timeout":
                guard let s = Double(value), (1...3600).contains(s) else { throw fail() }
                c.reassemblyTimeout = s
            case "drain_timeout":
                guard let s = Double(value), (0...300).contains(s) else { throw fail() }
                c.drainTimeout = s
            case "device_workers":
                guard let n = Int(value), (1...4096).contains(n) else { throw fail() }
                c.deviceWorkers = n
            case "sa_soft_seconds", "sa_hard_seconds":
                guard let s = UInt32(value), (60...86400).contains(s) else { throw fail() }
                if key == "sa_soft_seconds" { c.saSoftSeconds = s } else { c.saHardSeconds = s }
            default:
                guard try parseServiceKey(key, value, into: &c, fetchSettings: &fetchSettings, resolve: resolve, fail: fail) else {
                    throw fail()
                }
            }
        }
        guard c.saSoftSeconds < c.saHardSeconds else {
            let line = max(seen["sa_soft_seconds"] ?? 0, seen["sa_hard_seconds"] ?? 0)
            throw ConfigError(file: file, line: line, key: seen["sa_hard_seconds"] == line ? "sa_hard_seconds" : "sa_soft_seconds",
                              reason: "sa_soft_seconds (\(c.saSoftSeconds)) must be below sa_hard_seconds (\(c.saHardSeconds))")
        }
        func missing(_ key: String) -> ConfigError {
            ConfigError(file: file, line: 0, key: key, reason: "required; allowed: " + allowed(key))
        }
        // No default negotiator: an operator who forgot it must not get the emulated peer.
        for key in ["registry", "kek", "smpp_system_id", "smpp_password_file", "gateway_number", "negotiator"] where seen[key] == nil {
            throw missing(key)
        }
        if wantsStrongSwan {
            for key in ["strongswan_vici", "strongswan_key_socket", "strongswan_server", "strongswan_server_id",
                        "strongswan_ike_remote"] where seen[key] == nil {
                throw ConfigError(file: file, line: seen["negotiator"] ?? 0, key: key,
                                  reason: "required with negotiator = strongswan; allowed: " + allowed(key))
            }
            c.negotiator = .strongswan(strongswan)
        } else if let stray = seen.filter({ $0.key.hasPrefix("strongswan_") }).min(by: { $0.value < $1.value }) {
            throw ConfigError(file: file, line: stray.value, key: stray.key, reason: "only used with negotiator = strongswan")
        }
        try checkServices(&c, fetchSettings: fetchSettings, seen: seen, file: file)
        return c
    }

    /// One line, trailing newline dropped; a file others may read is refused (as the KEK file is).
    static func readPassword(_ path: String, fail: (String?) -> ConfigError) throws(ConfigError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw fail("\(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & 0o077 == 0 else {
            throw fail("\(path): group or others may read it (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600")
        }
        guard let data = FileManager.default.contents(atPath: path), var s = String(data: data, encoding: .utf8) else {
            throw fail("\(path): unreadable")
        }
        while s.hasSuffix("\n") || s.hasSuffix("\r") { s.removeLast() }
        guard (1...8).contains(s.utf8.count), !s.contains("\n") else { throw fail("\(path): the password must be one line of 1-8 characters") }
        return s
    }

    /// The `registry` value: a bare path (SQLite, as before stores were named), `sqlite:PATH`, or a PostgreSQL URL
    /// whose password comes from a 0600 `password_file` only (checked here; relative paths from the config's directory).
    static func registryStore(_ value: String, resolve: (String) -> String,
                              fail: (String?) -> ConfigError) throws(ConfigError) -> (String, RegistryStoreSpec) {
        if !value.hasPrefix("sqlite:") && !value.contains("://") {
            let path = resolve(value)
            return (path, .sqlite(path: path))
        }
        var spec: RegistryStoreSpec
        do { spec = try RegistryStoreSpec.parse(value) } catch { throw fail(error.description) }
        switch spec {
        case .sqlite(let path):
            spec = .sqlite(path: resolve(path))
            return ("sqlite:" + resolve(path), spec)
        case .postgres(var p):
            switch p.password {
            case .environment: throw fail("the daemon takes the database password from password_file only")
            case .none: break
            case .file(let path):
                p.password = .file(resolve(path))
                do { _ = try RegistryStoreSpec.readPasswordFile(resolve(path)) } catch { throw fail(error.description) }
            }
            return (value, .postgres(p))
        }
    }

    /// `HOST:PORT`, split at the last colon; HOST non-empty, PORT 0-65535 (0: any free port).
    static func hostPort(_ s: String) -> Endpoint? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let host = String(s[..<colon]), port = s[s.index(after: colon)...]
        guard !host.isEmpty, let p = UInt16(port) else { return nil }
        return Endpoint(host: host, port: p)
    }
}
