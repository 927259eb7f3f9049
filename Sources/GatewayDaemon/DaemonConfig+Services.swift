import Foundation

/// The keys of the daemon's back-end services and admin endpoint (docs/gateway.md): secret data, https fetch, the
/// back-end socket (`negotiator = socket`, `secret_service = socket`) and the loopback-only admin routes.
extension DaemonConfig {
    public enum SecretService: String, Sendable, Equatable { case off, receipt, socket }
    public enum FetchService: Sendable, Equatable {
        case off
        case https(caFile: String?, timeout: Double)
    }

    public struct ServiceSettings: Sendable, Equatable {
        public var secret = SecretService.off
        public var fetch = FetchService.off
        /// The back-end socket (Gateway/BackendProtocol.swift); required by `negotiator = socket` and
        /// `secret_service = socket`.
        public var backendSocket: String?
        public var backendTimeout: Double = 10
        /// `/admin/...` on the HTTP listener (loopback only).
        public var admin = false
        /// `smpp_outbox_capacity`: SMS parts queued for submit_sm at most (ESMEConfig.outboxCapacity).
        public var smppOutboxCapacity = 1024
        public init() {}
    }

    static let serviceKeys: [(key: String, allowed: String)] = [
        ("secret_service", "off, receipt (answer with what arrived) or socket (the back-end socket)"),
        ("fetch", "off or https"),
        ("fetch_ca_file", "PEM file of the CAs https fetches trust (default: the system's)"),
        ("fetch_timeout", "1-60 seconds"),
        ("backend_socket", "path of the back-end Unix socket"),
        ("backend_timeout", "1-60 seconds"),
        ("smpp_outbox_capacity", "1-100000 SMS parts queued for submit_sm; past it a downlink is refused and counted"),
        ("admin", "off or on (/admin routes on http_listen, which must then be a loopback address)"),
    ]

    /// Parses one of `serviceKeys`; false when `key` is not one of them.
    static func parseServiceKey(_ key: String, _ value: String, into c: inout DaemonConfig, fetchSettings f: inout (ca: String?, timeout: Double),
                                resolve: (String) -> String, fail: (String?) -> ConfigError) throws(ConfigError) -> Bool {
        switch key {
        case "secret_service":
            guard let s = SecretService(rawValue: value) else { throw fail(nil) }
            c.services.secret = s
        case "fetch":
            switch value {
            case "off": c.services.fetch = .off
            case "https": c.services.fetch = .https(caFile: nil, timeout: 10)
            default: throw fail(nil)
            }
        case "fetch_ca_file":
            let path = resolve(value)
            guard FileManager.default.isReadableFile(atPath: path) else { throw fail("\(path): not readable") }
            f.ca = path
        case "fetch_timeout":
            guard let s = Double(value), (1...60).contains(s) else { throw fail(nil) }
            f.timeout = s
        case "backend_socket": c.services.backendSocket = resolve(value)
        case "backend_timeout":
            guard let s = Double(value), (1...60).contains(s) else { throw fail(nil) }
            c.services.backendTimeout = s
        case "smpp_outbox_capacity":
            guard let n = Int(value), (1...100_000).contains(n) else { throw fail(nil) }
            c.services.smppOutboxCapacity = n
        case "admin":
            switch value {
            case "on": c.services.admin = true
            case "off": c.services.admin = false
            default: throw fail(nil)
            }
        default: return false
        }
        return true
    }

    /// Rules across keys, checked after the whole file is read.
    static func checkServices(_ c: inout DaemonConfig, fetchSettings f: (ca: String?, timeout: Double), seen: [String: Int],
                              file: String) throws(ConfigError) {
        func error(_ key: String, _ why: String) -> ConfigError {
            ConfigError(file: file, line: seen[key] ?? 0, key: key, reason: why)
        }
        if case .https = c.services.fetch {
            c.services.fetch = .https(caFile: f.ca, timeout: f.timeout)
        } else {
            for key in ["fetch_ca_file", "fetch_timeout"] where seen[key] != nil {
                throw error(key, "only used with fetch = https")
            }
        }
        if case .socket = c.negotiator {
            guard let path = c.services.backendSocket else { throw error("negotiator", "negotiator = socket needs backend_socket") }
            c.negotiator = .socket(path: path, timeout: c.services.backendTimeout)
        }
        if c.services.backendSocket == nil, c.services.secret == .socket {
            throw error("secret_service", "secret_service = socket needs backend_socket")
        }
        if c.services.admin, !["127.0.0.1", "::1", "localhost"].contains(c.httpListen.host) {
            throw error("admin", "admin = on needs http_listen on a loopback address (127.0.0.1, ::1), not \(c.httpListen.host)")
        }
    }
}
