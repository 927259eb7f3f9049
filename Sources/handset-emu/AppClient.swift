import Foundation

/// An application on the firmware's local datagram interface (see Sources/handset-fw/Firmware+App.swift).
final class AppClient: @unchecked Sendable {
    struct Message {
        var op: UInt8
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let fd: Int32
    var firmwarePort: UInt16 = 0
    private let cond = NSCondition()
    private var inbox: [Message] = []
    private var running = true

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard fd >= 0, rc == 0 else { throw WorldError("app socket: errno \(errno)") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in loop() }
    }

    private func loop() {
        var buf = [UInt8](repeating: 0, count: 4096)
        while cond.withLock({ running }) {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { continue }
            cond.withLock {
                inbox.append(Message(op: buf[0], body: Array(buf[1..<n])))
                cond.broadcast()
            }
        }
    }

    func stop() { cond.withLock { running = false } }

    func send(_ bytes: [UInt8]) {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = firmwarePort.bigEndian
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// Registers this app with the firmware (any request does; 0x00 does nothing else).
    func hello() { send([0x00]) }
    func datagram(to port: UInt16, from sport: UInt16, _ payload: [UInt8]) {
        send([0x01, 127, 0, 0, 1] + Self.be16(port) + Self.be16(sport) + payload)
    }
    func secret(channel: UInt16, _ payload: [UInt8]) { send([0x02] + Self.be16(channel) + payload) }
    func fetch(_ url: String) { send([0x03] + Array(url.utf8)) }

    /// Waits for (and removes) the first message that matches.
    func wait(timeout: TimeInterval, _ match: (Message) -> Bool) -> Message? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let i = inbox.firstIndex(where: match) { return inbox.remove(at: i) }
            guard cond.wait(until: deadline) else { return nil }
        }
    }

    func drain() { cond.withLock { inbox.removeAll() } }
}
