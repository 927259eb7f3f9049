// Thin blocking TCP wrappers for SMPP over loopback or a LAN: one PDU read = 16 header octets, bound check, body.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum SMPPSocketError: Error, Equatable, Sendable {
    case system(String, Int32)
    case closed
    case timedOut
    case badFrame(SMPPError)
}

public final class SMPPSocket: @unchecked Sendable {
    public let fd: Int32
    private let writeLock = NSLock()

    public init(fd: Int32) { self.fd = fd }

    public static func connect(host: String, port: Int) throws(SMPPSocketError) -> SMPPSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
            Glibc.close(fd); throw .system("inet_pton", EINVAL)
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { let e = errno; Glibc.close(fd); throw .system("connect", e) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return SMPPSocket(fd: fd)
    }

    /// A listening socket on 127.0.0.1 (`port` 0 picks one); returns it and the port bound.
    public static func listen(port: Int) throws(SMPPSocketError) -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && Glibc.listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { let e = errno; Glibc.close(fd); throw .system("bind/listen", e) }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// Waits up to `timeoutMs` for a connection on a listening socket; nil on timeout or error.
    public static func accept(listening fd: Int32, timeoutMs: Int32) -> SMPPSocket? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMs) > 0 else { return nil }
        let c = Glibc.accept(fd, nil, nil)
        guard c >= 0 else { return nil }
        var one: Int32 = 1
        setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return SMPPSocket(fd: c)
    }

    /// Waits up to `timeoutMs` for input; false on timeout.
    public func readable(timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, timeoutMs) > 0
    }

    /// One whole PDU's octets. A bad header throws `.badFrame` before the body is read: the stream is then lost.
    public func readPDU() throws(SMPPSocketError) -> [UInt8] {
        let head = try readExactly(SMPPLimits.headerLength)
        let h: SMPPPDU.Header
        do { h = try SMPPPDU.header(head) } catch { throw .badFrame(error) }
        return head + (try readExactly(Int(h.length) - SMPPLimits.headerLength))
    }

    private func readExactly(_ n: Int) throws(SMPPSocketError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, n - got) }
            if r == 0 { throw .closed }
            if r < 0 {
                if errno == EINTR { continue }
                throw .system("read", errno)
            }
            got += r
        }
        return out
    }

    public func write(_ bytes: [UInt8]) throws(SMPPSocketError) {
        writeLock.lock(); defer { writeLock.unlock() }
        var sent = 0
        while sent < bytes.count {
            let r = bytes.withUnsafeBytes { send($0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if r < 0 {
                if errno == EINTR { continue }
                throw .system("send", errno)
            }
            sent += r
        }
    }

    public func send(_ pdu: SMPPPDU) throws(SMPPSocketError) { try write(pdu.encode()) }

    /// Wakes a reader blocked in read(); close() follows once it has let go.
    public func shutdown() { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    public func close() { Glibc.close(fd) }

    private func send(_ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int { Glibc.send(fd, p, n, flags) }
}
