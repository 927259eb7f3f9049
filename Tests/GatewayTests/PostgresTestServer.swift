import Foundation
import Gateway
import PostgresNIO

/// A throwaway PostgreSQL server for the tests: its own data directory in a temp dir, 127.0.0.1 on a free port,
/// its socket in the temp dir. initdb runs once per test process into a template that each server copies. Run as
/// root, the server runs as the `postgres` user (or `nobody`): PostgreSQL refuses to run as root. A watchdog shell
/// stops the server and removes the directory within a second or two of the test process exiting, however it exits.
final class PostgresTestServer: @unchecked Sendable {
    static let binDir: String? = {
        let fm = FileManager.default
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        return versions.reversed().map { "/usr/lib/postgresql/\($0)/bin" }
            .first { fm.isExecutableFile(atPath: "\($0)/initdb") && fm.isExecutableFile(atPath: "\($0)/pg_ctl") }
    }()
    static var available: Bool { binDir != nil }
    static let missing = "PostgreSQL binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) not found: run scripts/setup"
    /// The OS user the server runs as, when the tests run as root.
    static let runAs: String? = geteuid() != 0 ? nil : (getpwnam("postgres") != nil ? "postgres" : "nobody")
    static let user = "gateway"
    static let password = "pw-\(UUID().uuidString.prefix(8))"

    /// One initdb per process; servers copy it.
    static let template = Result<String, any Error> {
        guard let bin = binDir else { throw TestServerError.failed(missing) }
        let root = try makeDir("pgt-template")
        let pw = root + "/pw"
        try (password + "\n").write(toFile: pw, atomically: false, encoding: .utf8)
        try own(pw)
        try watch(root, dataDir: nil)
        try sh(asServer: true, ["\(bin)/initdb", "-D", root + "/data", "-U", user, "--pwfile=" + pw, "-E", "UTF8", "-N",
                                "--auth-host=scram-sha-256", "--auth-local=trust"], timeout: 60)
        return root + "/data"
    }

    /// The server most tests share (one database per test).
    static let shared = Result<PostgresTestServer, any Error> { try PostgresTestServer() }

    let dir: String
    let port: Int
    var data: String { dir + "/data" }
    var socketDir: String { dir + "/sock" }
    /// A copy of the password owned by the client (0600), for `password_file=`.
    var passwordFile: String { dir + "/client-pw" }

    init() throws {
        guard let bin = Self.binDir else { throw TestServerError.failed(Self.missing) }
        dir = try Self.makeDir("pgt")
        try FileManager.default.createDirectory(atPath: dir + "/sock", withIntermediateDirectories: false)
        try Self.own(dir + "/sock")
        try Self.sh(asServer: false, ["/bin/cp", "-a", try Self.template.get(), dir + "/data"], timeout: 30)
        try Self.watch(dir, dataDir: dir + "/data")
        let pwFile = dir + "/client-pw"
        try (Self.password + "\n").write(toFile: pwFile, atomically: false, encoding: .utf8)
        chmod(pwFile, 0o600)
        var lastError: Error?
        for _ in 0..<3 {
            let p = Self.freePort()
            do {
                try Self.sh(asServer: true, ["\(bin)/pg_ctl", "-D", dir + "/data", "-l", dir + "/log", "-w", "-t", "30", "-o",
                                             "-p \(p) -c listen_addresses=127.0.0.1 -k \(dir)/sock", "start"], timeout: 40)
                port = p
                return
            } catch { lastError = error }
        }
        throw lastError ?? TestServerError.failed("no port")
    }

    func start() throws {
        try Self.sh(asServer: true, ["\(Self.binDir!)/pg_ctl", "-D", data, "-l", dir + "/log", "-w", "-t", "30", "-o",
                                     "-p \(port) -c listen_addresses=127.0.0.1 -k \(socketDir)", "start"], timeout: 40)
    }

    func stop(mode: String = "fast") throws {
        try Self.sh(asServer: true, ["\(Self.binDir!)/pg_ctl", "-D", data, "-m", mode, "-w", "-t", "30", "stop"], timeout: 40)
    }

    /// Stops the server and removes its directory (the watchdog does the same if this is never called).
    func destroy() {
        try? stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A fresh database on this server.
    func createDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try psql("postgres", "CREATE DATABASE \(name)")
        return name
    }

    /// Runs SQL as the gateway's user over the unix socket (trusted locally): tests edit rows behind the store.
    @discardableResult
    func psql(_ database: String, _ sql: String) throws -> String {
        try Self.sh(asServer: false, ["\(Self.binDir!)/psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", socketDir,
                                      "-p", "\(port)", "-U", Self.user, "-d", database, "-c", sql], timeout: 30)
    }

    func spec(_ database: String, connections: Int = 4) -> String {
        "postgres://\(Self.user)@127.0.0.1:\(port)/\(database)?password_file=\(passwordFile)&connections=\(connections)"
    }

    // MARK: Helpers

    static func makeDir(_ prefix: String) throws -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestServerError.failed("mkdtemp: \(errno)") }
        let dir = String(cString: p)
        try own(dir)
        return dir
    }

    static func own(_ path: String) throws {
        guard let user = runAs, let pw = getpwnam(user) else { return }
        guard chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else { throw TestServerError.failed("chown \(path)") }
    }

    /// Detached shell: once this process is gone, stop the server (if any) and remove `dir`.
    static func watch(_ dir: String, dataDir: String?) throws {
        let stop = dataDir.map { d in
            (runAs.map { "runuser -u \($0) -- " } ?? "") + "\(binDir!)/pg_ctl -D \(d) -m immediate -w -t 10 stop >/dev/null 2>&1;"
        } ?? ""
        _ = try spawn(["/usr/bin/setsid", "/bin/sh", "-c",
                       "while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done; \(stop) rm -rf \(dir)"], output: "/dev/null")
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// Runs a command (as the server's user when `asServer` and root), bounded in time; throws with its output.
    /// posix_spawn and waitpid rather than Foundation's Process, whose wait never returned once `pg_ctl start`
    /// had left a server running.
    @discardableResult
    static func sh(asServer: Bool, _ argv: [String], timeout: Double) throws -> String {
        let full = asServer && runAs != nil ? ["/usr/sbin/runuser", "-u", runAs!, "--"] + argv : argv
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pgt-sh-\(UUID().uuidString)").path
        defer { unlink(log) }
        let pid = try spawn(full, output: log)
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw TestServerError.failed("\(argv.joined(separator: " ")) timed out after \(timeout) s")
            }
            usleep(10_000)
        }
        let text = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw TestServerError.failed("\(argv.joined(separator: " ")) failed (status \(status)): \(text.suffix(800))")
        }
        return text
    }

    /// Starts `argv` with stdin from /dev/null and stdout and stderr to `output`; returns its pid.
    static func spawn(_ argv: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { throw TestServerError.failed("spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }
}

enum TestServerError: Error, CustomStringConvertible {
    case failed(String)
    var description: String { if case .failed(let s) = self { s } else { "" } }
}
