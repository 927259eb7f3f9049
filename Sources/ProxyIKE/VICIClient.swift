import Foundation

/// A blocking VICI client on charon's unix socket. One command at a time (the protocol has no request ids);
/// events that arrive during a command go to its `onEvent`. After any transport or framing error the connection
/// is spent: every later call throws `.closed`, and the owner opens a new one.
public final class VICIClient: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var fd: Int32
    private var broken = false

    /// Connects to charon's VICI socket (a unix connect succeeds or fails at once).
    public init(path: String) throws(VICIError) {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connect(path: path, errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw .connect(path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .connect(path: path, errno: e)
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func close() {
        lock.withLock {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
            broken = true
        }
    }

    public var isUsable: Bool { lock.withLock { !broken } }

    /// Sends a command and returns its response; events in between go to `onEvent`.
    public func call(_ command: String, _ message: VICIMessage = VICIMessage(), timeout: Double = 10,
                     onEvent: ((String, VICIMessage) -> Void)? = nil) throws(VICIError) -> VICIMessage {
        try locked { () throws(VICIError) -> VICIMessage in
            let deadline = Date().addingTimeInterval(timeout)
            try send(.commandRequest(command, message))
            while true {
                switch try receive(deadline) {
                case .commandResponse(let m): return m
                case .commandUnknown: throw .commandUnknown(command)
                case .event(let name, let m): onEvent?(name, m)
                case let p: throw .unexpectedPacket(p.type)
                }
            }
        }
    }

    /// A streaming command: registers `event`, runs the command, unregisters; returns the response and the events.
    public func stream(_ command: String, _ message: VICIMessage = VICIMessage(), event: String,
                       timeout: Double = 10) throws(VICIError) -> (response: VICIMessage, events: [VICIMessage]) {
        try register(event, timeout: timeout)
        var events: [VICIMessage] = []
        let r = try call(command, message, timeout: timeout) { name, m in if name == event { events.append(m) } }
        try unregister(event, timeout: timeout)
        return (r, events)
    }

    public func register(_ event: String, timeout: Double = 10) throws(VICIError) {
        try registration(.eventRegister(event), event, timeout)
    }

    public func unregister(_ event: String, timeout: Double = 10) throws(VICIError) {
        try registration(.eventUnregister(event), event, timeout)
    }

    /// Waits for the next event of those registered; nil when none came in time (the connection stays usable).
    public func nextEvent(timeout: Double) throws(VICIError) -> (name: String, message: VICIMessage)? {
        try locked { () throws(VICIError) -> (name: String, message: VICIMessage)? in
            guard try readable(Date().addingTimeInterval(timeout)) else { return nil }
            switch try receive(Date().addingTimeInterval(max(timeout, 5))) {
            case .event(let n, let m): return (n, m)
            case let p: throw .unexpectedPacket(p.type)
            }
        }
    }

    private func registration(_ p: VICIPacket, _ event: String, _ timeout: Double) throws(VICIError) {
        try locked { () throws(VICIError) in
            let deadline = Date().addingTimeInterval(timeout)
            try send(p)
            while true {
                switch try receive(deadline) {
                case .eventConfirm: return
                case .eventUnknown: throw .eventUnknown(event)
                case .event: continue  // an event already registered, raised meanwhile
                case let q: throw .unexpectedPacket(q.type)
                }
            }
        }
    }

    // MARK: transport

    /// Runs `body` under the lock; a failure other than a clean event timeout spends the connection.
    private func locked<T>(_ body: () throws(VICIError) -> T) throws(VICIError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard !broken else { throw .closed }
        do {
            return try body()
        } catch {
            spendUnlessInStep(error)
            throw error
        }
    }

    private func spendUnlessInStep(_ e: VICIError) {
        switch e {
        case .commandUnknown, .eventUnknown: return  // a whole packet was read: still in step
        default:
            broken = true
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    /// The framed copy is wiped after sending: requests may carry a PSK.
    private func send(_ p: VICIPacket) throws(VICIError) {
        var bytes = try p.framed()
        defer { for i in bytes.indices { bytes[i] = 0 } }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io(errno: errno) }
            off += n
        }
    }

    private func receive(_ deadline: Date) throws(VICIError) -> VICIPacket {
        let header = try read(4, deadline)
        let n = try VICIPacket.segmentLength(header)
        return try VICIPacket.decode(try read(n, deadline))
    }

    private func read(_ n: Int, _ deadline: Date) throws(VICIError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            guard try readable(deadline) else { throw .timeout }
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard r != 0 else { throw .closed }
            guard r > 0 else { throw .io(errno: errno) }
            got += r
        }
        return out
    }

    private func readable(_ deadline: Date) throws(VICIError) -> Bool {
        while true {
            let ms = Int32(max(0, min(Double(Int32.max), deadline.timeIntervalSinceNow * 1000)))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, ms)
            if r < 0 && errno == EINTR { continue }
            guard r >= 0 else { throw .io(errno: errno) }
            return r > 0
        }
    }
}
