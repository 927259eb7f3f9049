import Foundation
import Gateway
import HandsetCore
import Logging

/// The gateway's UDP carriage (docs/key-delegation.md §1): a real socket on 127.0.0.1 taking
/// `non-ESP marker || message` datagrams. Answers go back to the sender the same way; an answer whose type is
/// SMS-only is handed to `onSMS` instead.
public final class GatewayUDPListener: @unchecked Sendable {
    public struct Stats: Sendable, Equatable {
        /// Datagrams received, and those without the marker or too short to be a message.
        public var received = 0, malformed = 0, answered = 0
        /// Clear header types seen (before any check), so a test can prove what never came this way.
        public var types: [UInt8: Int] = [:]
    }

    public let port: UInt16
    let fd: Int32
    let gateway: Gateway
    let onSMS: @Sendable ([Downlink]) -> Void
    /// Every key-delegation message carried this way (up: from the handset), marker removed.
    public var onMessage: (@Sendable (_ up: Bool, _ bytes: [UInt8]) -> Void)?
    let lock = NSLock()
    var running = true
    var stats_ = Stats()
    let log: Logger

    /// Binds 127.0.0.1:`port` (0 picks a free one) and serves on its own thread until `stop()`.
    public init(gateway: Gateway, port: UInt16 = 0, logger: Logger = Logger(label: "gateway-udp"),
                onSMS: @escaping @Sendable ([Downlink]) -> Void) throws {
        self.gateway = gateway
        self.onSMS = onSMS
        log = logger
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard s >= 0 else { throw EmulatedPeer.PeerError.socket(errno) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(s)
            throw EmulatedPeer.PeerError.socket(e)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        self.port = UInt16(bigEndian: a.sin_port)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in loop() }
    }

    public var stats: Stats { lock.withLock { stats_ } }

    public func stop() { lock.withLock { running = false } }

    private func loop() {
        var buf = [UInt8](repeating: 0, count: 2048)
        while lock.withLock({ running }) {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
                }
            }
            guard n > 0 else { continue }
            handle(Array(buf[0..<n]), from: from)
        }
        close(fd)
    }

    /// One datagram: check the marker, hand the message to the gateway, answer.
    func handle(_ datagram: [UInt8], from: sockaddr_in) {
        let ok = datagram.withUnsafeBytes { KD.isKeyDelegationDatagram($0) }
        lock.withLock {
            stats_.received += 1
            if !ok { stats_.malformed += 1 }
            if ok, datagram.count > KD.nonESPMarkerLength + 1 { stats_.types[datagram[KD.nonESPMarkerLength + 1], default: 0] += 1 }
        }
        guard ok else { return }
        let message = Array(datagram[KD.nonESPMarkerLength...])
        onMessage?(true, message)
        let answers = gateway.handleUplink(message, via: .udp)
        let bySMS = answers.filter { $0.carriage == .sms }
        if !bySMS.isEmpty { onSMS(bySMS) }
        for d in answers where d.carriage == .udp {
            onMessage?(false, d.bytes)
            var to = from
            let out = [UInt8](repeating: 0, count: KD.nonESPMarkerLength) + d.bytes
            let sent = out.withUnsafeBytes { b in
                withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if sent == out.count { lock.withLock { stats_.answered += 1 } }
            else { log.warning("UDP answer not sent", metadata: ["errno": "\(errno)"]) }
        }
    }
}
