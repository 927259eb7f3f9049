import Foundation
import Gateway
import HandsetCore

/// `handset-gateway` as its own process, started the way an operator runs it (a config file, SMPP to the SMS
/// centre), under `setpriv --pdeathsig KILL` so it dies with the emulator however that ends. Its stderr (JSON log
/// lines) goes to `gateway.log` in the world's directory; its ports are read from its "started" line.
final class GatewayProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL
    private(set) var httpPort = 0
    private(set) var udpPort = 0
    private let lock = NSLock()
    private var logHandle: FileHandle?

    struct Settings {
        var executable: String
        var dir: URL
        var smppPort: Int
        var smppPassword: String
        var gatewayNumber: String
        var backendSocket: String
        var fetchCAFile: String
        /// The negotiator's keys: the emulator's opposite party over the back-end socket, or the lab's proxy charon.
        var negotiator = "negotiator = socket"
    }

    init(_ s: Settings) throws {
        logURL = s.dir.appendingPathComponent("gateway.log")
        let pw = s.dir.appendingPathComponent("smpp.password")
        try Self.writePrivate(pw, s.smppPassword + "\n")
        let conf = s.dir.appendingPathComponent("gateway.conf")
        // Relative paths are taken from the config file's directory.
        try Self.writePrivate(conf, """
            # written by handset-emu run: the gateway as an operator runs it, against the emulated SMS centre
            registry = registry.sqlite
            kek = registry.kek
            smpp_host = 127.0.0.1
            smpp_port = \(s.smppPort)
            smpp_system_id = handset-emu
            smpp_password_file = smpp.password
            gateway_number = \(s.gatewayNumber)
            udp_listen = 127.0.0.1:0
            http_listen = 127.0.0.1:0
            log_format = json
            \(s.negotiator)
            backend_socket = \(s.backendSocket)
            secret_service = socket
            fetch = https
            fetch_ca_file = \(s.fetchCAFile)
            admin = on
            drain_timeout = 5

            """)
        let setpriv = "/usr/bin/setpriv"
        if FileManager.default.isExecutableFile(atPath: setpriv) {
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "KILL", "--", s.executable, "--config", conf.path]
        } else {
            process.executableURL = URL(fileURLWithPath: s.executable)
            process.arguments = ["--config", conf.path]
        }
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Copies the log to the file and reports the started line (its ports).
        let started = StartedLine()
        let reader = pipe.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                log.write(chunk)
                pending.append(chunk)
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = pending[pending.startIndex..<nl]
                    pending = Data(pending[(nl + 1)...])
                    started.offer(line)
                }
            }
            started.offer(nil)
        }
        logHandle = log
        guard let (http, udp) = started.wait(timeout: 30) else {
            stop()
            throw WorldError("handset-gateway did not start; its log:\n" + Self.tail(logURL, 20))
        }
        httpPort = http
        udpPort = udp
        let end = Date().addingTimeInterval(15)
        while Date() < end, LoopbackHTTP.request(port: http, "GET", "/ready")?.status != 200 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        guard LoopbackHTTP.request(port: http, "GET", "/ready")?.status == 200 else {
            stop()
            throw WorldError("handset-gateway not ready (SMPP bound, registry open) within 15 s; its log:\n" + Self.tail(logURL, 20))
        }
    }

    /// SIGTERM, then the drain; nil when it exited 0 within 20 s, else what happened (it is killed then).
    @discardableResult
    func stop() -> String? {
        guard process.isRunning else { return exitDescription }
        kill(process.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(20)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return "did not exit within 20 s of SIGTERM (killed)"
        }
        process.waitUntilExit()
        return exitDescription
    }

    private var exitDescription: String? {
        guard !process.isRunning else { return "still running" }
        if process.terminationReason == .uncaughtSignal { return "killed by signal \(process.terminationStatus)" }
        return process.terminationStatus == 0 ? nil : "exit status \(process.terminationStatus)"
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    static func tail(_ url: URL, _ n: Int) -> String {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").suffix(n).joined(separator: "\n")
    }

    static func writePrivate(_ url: URL, _ text: String) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw WorldError("cannot write \(url.path)")
        }
    }

    // MARK: what the daemon shows

    /// Every `gateway_*_total` counter without labels, from /metrics.
    func metrics() throws -> [String: Double] {
        guard let r = LoopbackHTTP.request(port: httpPort, "GET", "/metrics"), r.status == 200 else {
            throw ScenarioFailure("the gateway's /metrics did not answer")
        }
        var out: [String: Double] = [:]
        for line in r.body.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = Double(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    func admin(_ method: String, _ path: String) throws -> (status: Int, body: String) {
        guard let r = LoopbackHTTP.request(port: httpPort, method, path) else {
            throw ScenarioFailure("the gateway's admin endpoint did not answer \(method) \(path)")
        }
        return r
    }

    final class StartedLine: @unchecked Sendable {
        private let cond = NSCondition()
        private var ports: (Int, Int)?
        private var ended = false

        func offer(_ line: Data?) {
            cond.lock()
            defer { cond.unlock() }
            guard let line else { ended = true; cond.broadcast(); return }
            guard ports == nil, let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                  obj["msg"] as? String == "handset-gateway started", let http = obj["http"] as? String,
                  let h = Int(http.split(separator: ":").last ?? ""), let u = Int(obj["udp"] as? String ?? "") else { return }
            ports = (h, u)
            cond.broadcast()
        }

        func wait(timeout: Double) -> (Int, Int)? {
            let end = Date().addingTimeInterval(timeout)
            cond.lock()
            defer { cond.unlock() }
            while ports == nil && !ended && cond.wait(until: end) {}
            return ports
        }
    }
}

/// Just enough HTTP/1.1 for the daemon's loopback endpoints: one request per connection, answer read to EOF.
enum LoopbackHTTP {
    static func request(port: Int, _ method: String, _ path: String, timeout: Double = 5) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { return nil }
        let req = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        guard req.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == req.count else { return nil }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n"),
              let status = Int(text[..<headEnd.lowerBound].split(separator: " ").dropFirst().first ?? "") else { return nil }
        return (status, String(text[headEnd.upperBound...]))
    }
}
