import Foundation
import PostgresNIO

/// Which registry store to open, as one configuration string:
/// - `sqlite:PATH` — the embedded default (a file, 0600, WAL);
/// - `postgres://USER@HOST[:PORT]/DB[?password_file=PATH|password_env=NAME][&connections=N]` (also
///   `postgresql://`). The password never sits in the string itself: a file (owner-only, one line) or an
///   environment variable. Without either, the server must not ask for one. TLS is not offered: the database is
///   expected on loopback or a private network.
public enum RegistryStoreSpec: Equatable, Sendable {
    case sqlite(path: String)
    case postgres(Postgres)

    public struct Postgres: Equatable, Sendable {
        public var user: String
        public var host: String
        public var port: Int = 5432
        public var database: String
        public var password: PasswordSource = .none
        public var connections: Int = 4
    }

    public enum PasswordSource: Equatable, Sendable {
        case none
        case file(String)
        case environment(String)
    }

    /// Parses a spec; every mistake is a typed error naming what is wrong.
    public static func parse(_ spec: String) throws(RegistrySpecError) -> RegistryStoreSpec {
        if spec.hasPrefix("sqlite:") {
            let path = String(spec.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw .missing("the SQLite file path") }
            return .sqlite(path: path)
        }
        guard spec.hasPrefix("postgres://") || spec.hasPrefix("postgresql://") else {
            throw .unknownScheme(String(spec.prefix(while: { $0 != ":" })))
        }
        guard let url = URLComponents(string: spec) else { throw .malformed(spec) }
        guard url.password == nil else { throw .passwordInSpec }
        guard let user = url.user, !user.isEmpty else { throw .missing("the user (postgres://USER@HOST/DB)") }
        guard let host = url.host, !host.isEmpty else { throw .missing("the host") }
        let db = String(url.path.drop(while: { $0 == "/" }))
        guard !db.isEmpty, !db.contains("/") else { throw .missing("the database name (postgres://USER@HOST/DB)") }
        var p = Postgres(user: user, host: host, database: db)
        if let port = url.port {
            guard (1...65535).contains(port) else { throw .badValue("port", "\(port)") }
            p.port = port
        }
        for item in url.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "password_file" where !value.isEmpty && p.password == .none: p.password = .file(value)
            case "password_env" where !value.isEmpty && p.password == .none: p.password = .environment(value)
            case "connections":
                guard let n = Int(value), (1...64).contains(n) else { throw .badValue("connections", value) }
                p.connections = n
            case "password_file", "password_env": throw .badValue(item.name, value.isEmpty ? "(empty)" : "a second password source")
            default: throw .unknownOption(item.name)
            }
        }
        return .postgres(p)
    }

    /// Parses `spec` and opens that store with `kek`.
    public static func open(_ spec: String, kek: KeyEncryptionKey,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any RegistryStore {
        try open(try parse(spec), kek: kek, environment: environment)
    }

    /// Opens a parsed spec with `kek`: the one factory the daemon calls.
    public static func open(_ spec: RegistryStoreSpec, kek: KeyEncryptionKey,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any RegistryStore {
        switch spec {
        case .sqlite(let path):
            return try DeviceRegistry(path: path, kek: kek)
        case .postgres(let p):
            let password: String?
            switch p.password {
            case .none: password = nil
            case .environment(let name):
                guard let v = environment[name] else { throw RegistrySpecError.passwordSource("environment variable \(name) is not set") }
                password = v
            case .file(let path): password = try readPasswordFile(path)
            }
            let config = PostgresConnection.Configuration(host: p.host, port: p.port, username: p.user, password: password,
                                                          database: p.database, tls: .disable)
            return try PostgresRegistry(configuration: config, kek: kek, connections: p.connections)
        }
    }

    /// One line, owner-only (as libpq asks of .pgpass).
    public static func readPasswordFile(_ path: String) throws(RegistrySpecError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .passwordSource("\(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & 0o077 == 0 else { throw .passwordSource("\(path): group or others may read it; chmod 600") }
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else { throw .passwordSource("\(path): unreadable") }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !line.isEmpty else { throw .passwordSource("\(path): empty") }
        return line
    }
}

public enum RegistrySpecError: Error, Equatable, CustomStringConvertible {
    case unknownScheme(String)
    case malformed(String)
    case missing(String)
    case passwordInSpec
    case badValue(String, String)
    case unknownOption(String)
    case passwordSource(String)

    public var description: String {
        switch self {
        case .unknownScheme(let s): "registry: unknown store \"\(s)\" (sqlite:PATH or postgres://USER@HOST:PORT/DB)"
        case .malformed(let s): "registry: \"\(s)\" is not a URL"
        case .missing(let what): "registry: missing \(what)"
        case .passwordInSpec: "registry: no password in the URL; use ?password_file=PATH or ?password_env=NAME"
        case .badValue(let k, let v): "registry: bad \(k): \(v)"
        case .unknownOption(let k): "registry: unknown option \(k) (password_file, password_env, connections)"
        case .passwordSource(let r): "registry password: \(r)"
        }
    }
}
