import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a back-end call got no answer.
public enum BackendSocketError: Error, Equatable, CustomStringConvertible {
    /// No one listens on the socket (or the path is not a socket).
    case unreachable(Int32)
    /// No whole answer line within the bound.
    case timeout
    /// An answer that is not one JSON object of the protocol.
    case malformed
    case pathTooLong

    public var description: String {
        switch self {
        case .unreachable(let e): "unreachable: \(String(cString: strerror(e)))"
        case .timeout: "no answer in time"
        case .malformed: "malformed answer"
        case .pathTooLong: "socket path too long"
        }
    }
}

/// The gateway's end of the back-end socket: one connection per request, bounded by `timeout` (blocking; callers
/// run on a device's worker, never holding a lock).
public struct BackendSocketClient: Sendable {
    public let path: String
    public let timeout: Double
    /// Answers are short (an sa-transfer, a secret reply); anything longer is refused as malformed.
    static let maxLine = 64 * 1024

    public init(path: String, timeout: Double = 10) {
        self.path = path
        self.timeout = timeout
    }

    public func call(_ request: BackendRequest) -> Result<BackendResponse, BackendSocketError> {
        let fd: Int32
        switch UnixSocket.connect(path) {
        case .success(let f): fd = f
        case .failure(let e): return .failure(e)
        }
        defer { close(fd) }
        UnixSocket.setTimeout(fd, seconds: timeout)
        guard var line = try? JSONEncoder().encode(request) else { return .failure(.malformed) }
        line.append(0x0A)
        guard UnixSocket.writeAll(fd, line) else { return .failure(.unreachable(errno)) }
        switch UnixSocket.readLine(fd, max: Self.maxLine, deadline: Date().addingTimeInterval(timeout)) {
        case .failure(let e): return .failure(e)
        case .success(let answer):
            guard let r = try? JSONDecoder().decode(BackendResponse.self, from: Data(answer)) else { return .failure(.malformed) }
            return .success(r)
        }
    }
}

/// The back end's end: accepts on a Unix socket (mode 0600) and answers each request with `handle`, one thread per
/// connection. Used by the emulator (its opposite party and secret service) and by tests.
public final class BackendSocketServer: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let handle: @Sendable (BackendRequest) -> BackendResponse
    private let lock = NSLock()
    private var running = true
    private var served = 0, refused = 0
    /// Requests answered, and requests that were not one JSON object of the protocol (answered with a refusal).
    public var requests: Int { lock.withLock { served } }
    public var malformed: Int { lock.withLock { refused } }

    public init(path: String, handle: @escaping @Sendable (BackendRequest) -> BackendResponse) throws(BackendSocketError) {
        self.path = path
        self.handle = handle
        unlink(path)
        fd = try UnixSocket.listen(path)
        let t = Thread { [self] in acceptLoop() }
        t.name = "backend-accept"
        t.start()
    }

    public func stop() {
        lock.withLock { running = false }
        shutdown(fd, Int32(SHUT_RDWR))
        unlink(path)
    }

    private func acceptLoop() {
        while lock.withLock({ running }) {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                break
            }
            Thread.detachNewThread { [self] in serve(c) }
        }
        close(fd)
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        UnixSocket.setTimeout(c, seconds: 10)
        guard case .success(let line) = UnixSocket.readLine(c, max: BackendSocketClient.maxLine, deadline: Date().addingTimeInterval(10)),
              let request = try? JSONDecoder().decode(BackendRequest.self, from: Data(line)) else {
            lock.withLock { refused += 1 }
            var r = BackendResponse(ok: false)
            r.failure = "refused"
            r.reason = "malformed request"
            if var out = try? JSONEncoder().encode(r) { out.append(0x0A); _ = UnixSocket.writeAll(c, out) }
            return
        }
        lock.withLock { served += 1 }
        guard var out = try? JSONEncoder().encode(handle(request)) else { return }
        out.append(0x0A)
        _ = UnixSocket.writeAll(c, out)
    }
}

/// Thin wrappers around the socket calls the back-end socket needs.
enum UnixSocket {
    static func address(_ path: String) -> sockaddr_un? {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: a.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &a.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        return a
    }

    static func connect(_ path: String) -> Result<Int32, BackendSocketError> {
        guard var a = address(path) else { return .failure(.pathTooLong) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.unreachable(errno)) }
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            return .failure(.unreachable(e))
        }
        return .success(fd)
    }

    static func listen(_ path: String) throws(BackendSocketError) -> Int32 {
        guard var a = address(path) else { throw .pathTooLong }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(errno) }
        let old = umask(0o177)  // the socket file is created 0600
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard rc == 0, Glibc.listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw .unreachable(e)
        }
        return fd
    }

    static func setTimeout(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                off += n
            }
            return true
        }
    }

    /// Bytes up to the first newline (not included).
    static func readLine(_ fd: Int32, max: Int, deadline: Date) -> Result<[UInt8], BackendSocketError> {
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .unreachable(errno))
            }
            if n == 0 { return .failure(.malformed) }
            if let nl = buf[0..<n].firstIndex(of: 0x0A) {
                out += buf[0..<nl]
                return .success(out)
            }
            out += buf[0..<n]
            if out.count > max { return .failure(.malformed) }
        }
        return .failure(.timeout)
    }
}
