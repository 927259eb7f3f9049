import Foundation

/// An application on the firmware's local datagram interface, an AF_UNIX datagram socket
/// (see Sources/handset-fw/Firmware+App.swift and AppSocket.swift).
final class AppClient: @unchecked Sendable {
    struct Message {
        var op: UInt8
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let fd: Int32
    /// This app's own socket: the firmware answers the socket that sent the last request, by its path.
    let path: String
    /// The firmware's app socket (`app_socket` in its config).
    var firmwarePath = ""
    private let cond = NSCondition()
    private var inbox: [Message] = []
    private var running = true

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw WorldError("app socket: errno \(errno)") }
        unlink(path)
        var a = try Self.address(path)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { throw WorldError("app socket \(path): errno \(errno)") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in loop() }
    }

    static func address(_ path: String) throws -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: a.sun_path) else { throw WorldError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &a.sun_path) { $0.copyBytes(from: bytes) }
        return a
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

    func stop() {
        cond.withLock { running = false }
        unlink(path)
    }

    func send(_ bytes: [UInt8]) {
        guard var a = try? Self.address(firmwarePath) else { return }
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            } }
        }
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// Registers this app with the firmware (any known request does; 0x00 does nothing else).
    func hello() { send([0x00]) }
    func datagram(to port: UInt16, from sport: UInt16, _ payload: [UInt8]) {
        datagram(to: [127, 0, 0, 1], port: port, from: sport, payload)
    }
    func datagram(to address: [UInt8], port: UInt16, from sport: UInt16, _ payload: [UInt8]) {
        send([0x01] + address + Self.be16(port) + Self.be16(sport) + payload)
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
