// A real UDP socket, on 127.0.0.1 unless told otherwise: the far side of a module socket, the SMS centre's control
// port, and the packet gateway's public and proxy-side endpoints.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct UDPPeer: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var description: String { "\(host):\(port)" }
}

final class LoopbackUDPSocket: @unchecked Sendable {
    let fd: Int32
    let port: Int
    private var source: DispatchSourceRead?

    /// Binds `address`:`port` (0 picks a free port) and calls `onDatagram` on `queue` for each datagram.
    init(address: String = "127.0.0.1", port: Int, queue: DispatchQueue,
         onDatagram: @escaping @Sendable ([UInt8], UDPPeer) -> Void) throws(SystemCallError) {
        var addr = LoopbackUDPSocket.loopback(port: port)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
            throw SystemCallError(call: "inet_pton \(address)", errno: EINVAL)
        }
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard s >= 0 else { throw SystemCallError(call: "socket", errno: errno) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(s)
            throw SystemCallError(call: "bind \(address):\(port)", errno: e)
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        fd = s
        self.port = Int(UInt16(bigEndian: bound.sin_port))
        let src = DispatchSource.makeReadSource(fileDescriptor: s, queue: queue)
        src.setEventHandler { [fd = s] in
            while let (bytes, peer) = LoopbackUDPSocket.receive(fd) { onDatagram(bytes, peer) }
        }
        src.setCancelHandler { Glibc.close(s) }
        source = src
        src.resume()
    }

    private static func receive(_ fd: Int32) -> ([UInt8], UDPPeer)? {
        var buf = [UInt8](repeating: 0, count: 65536)
        var from = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buf.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
            }
        }
        guard n >= 0 else { return nil }
        var ip = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var a = from.sin_addr
        inet_ntop(AF_INET, &a, &ip, socklen_t(ip.count))
        let host = String(decoding: ip.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (Array(buf[0..<n]), UDPPeer(host: host, port: Int(UInt16(bigEndian: from.sin_port))))
    }

    @discardableResult
    func send(_ bytes: [UInt8], to peer: UDPPeer) -> Bool {
        var addr = LoopbackUDPSocket.loopback(port: peer.port)
        guard inet_pton(AF_INET, peer.host, &addr.sin_addr) == 1 else { return false }
        let n = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return n == bytes.count
    }

    func close() {
        source?.cancel()
        source = nil
    }

    static func loopback(port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port & 0xFFFF).bigEndian
        a.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return a
    }
}
