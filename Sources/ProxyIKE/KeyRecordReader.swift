import Foundation

public enum KeySocketError: Error, Equatable, Sendable, CustomStringConvertible {
    case connect(path: String, errno: Int32)
    /// The listener is not run by the uid we trust: its records are never read.
    case untrustedListener(uid: UInt32)
    case io(errno: Int32)

    public var description: String {
        switch self {
        case .connect(let p, let e): "cannot connect to key socket \(p): \(String(cString: strerror(e)))"
        case .untrustedListener(let uid): "key socket listener runs as uid \(uid), not a trusted one"
        case .io(let e): "key socket: \(String(cString: strerror(e)))"
        }
    }
}

/// Reads key records from the plugin's SOCK_SEQPACKET socket on a thread of its own. Before reading anything it
/// checks that the listener's SO_PEERCRED uid is trusted. Malformed records are counted and dropped; receive
/// buffers are wiped after every record.
public final class KeyRecordReader: @unchecked Sendable {
    public struct Counters: Equatable, Sendable {
        public var records = 0, malformed = 0, truncated = 0, reconnects = 0, untrusted = 0
        /// "installed" messages sent to the plugin, and those that could not be sent (no connection, buffer full).
        public var installedSent = 0, installedUnsent = 0
        /// IKE_SA key records (keylog only).
        public var ikeKeyRecords = 0
    }

    public let path: String
    public let trustedUID: UInt32
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var running = false
    private var tally = Counters()
    private var lastError: KeyRecordError?
    private let deliver: @Sendable (KeyRecord) -> Void
    private var ikeKeys: (@Sendable (IKEKeyRecord) -> Void)?

    /// Where IKE_SA key records go (only sent by a plugin configured with `ike_keys = yes`); without a receiver
    /// they are parsed, wiped and counted only.
    public func onIKEKeys(_ receiver: (@Sendable (IKEKeyRecord) -> Void)?) { lock.withLock { ikeKeys = receiver } }

    public var counters: Counters { lock.withLock { tally } }
    /// The last malformed record's error (never its content).
    public var lastMalformed: KeyRecordError? { lock.withLock { lastError } }

    public init(path: String, trustedUID: UInt32 = 0, deliver: @escaping @Sendable (KeyRecord) -> Void) {
        self.path = path
        self.trustedUID = trustedUID
        self.deliver = deliver
    }

    /// Connects once (so a wrong path or an untrusted listener fails here, typed) and starts reading.
    public func start() throws(KeySocketError) {
        let s = try Self.connect(path, trustedUID: trustedUID)
        lock.withLock {
            fd = s
            running = true
        }
        Thread.detachNewThread { [self] in readLoop() }
    }

    public func stop() {
        lock.withLock {
            running = false
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Tells the plugin that the handset has installed the SA it sends on with `spiOut` (its sa-ack): a rekey the
    /// proxy initiated may then send its DELETE (`hold_rekey`, docs/ike-proxy.md). Never blocks: a full socket
    /// buffer drops the message and the plugin's hold ends at its bound instead.
    @discardableResult
    public func installed(spiOut: UInt32) -> Bool {
        let text = String(format: "v=1\nevent=installed\nspi_out=%08x\n", spiOut)
        let ok = lock.withLock { () -> Bool in
            guard fd >= 0 else { return false }
            let n = text.utf8CString.withUnsafeBytes { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            return n == text.utf8.count
        }
        lock.withLock { if ok { tally.installedSent += 1 } else { tally.installedUnsent += 1 } }
        return ok
    }

    /// Connects and checks the listener's credentials.
    static func connect(_ path: String, trustedUID: UInt32) throws(KeySocketError) -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw .connect(path: path, errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(s)
            throw .connect(path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(s)
            throw .connect(path: path, errno: e)
        }
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it without _GNU_SOURCE).
        var cred = [UInt32](repeating: 0, count: 3)
        var len = socklen_t(12)
        guard getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, len == 12 else {
            let e = errno
            close(s)
            throw .io(errno: e)
        }
        guard cred[1] == trustedUID else {
            close(s)
            throw .untrustedListener(uid: cred[1])
        }
        return s
    }

    private func readLoop() {
        // One byte more than a record may hold, so an oversized one shows as truncated.
        var buf = [UInt8](repeating: 0, count: KeyRecord.maxSize + 1)
        while lock.withLock({ running }) {
            let s = lock.withLock { fd }
            if s < 0 {
                reconnect()
                continue
            }
            var p = pollfd(fd: s, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
            if n <= 0 {
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                lock.withLock {
                    close(s)
                    fd = -1
                }
                continue
            }
            handle(&buf, count: n)
        }
        lock.withLock {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// Parses one datagram and wipes the buffer, whatever the outcome.
    func handle(_ buf: inout [UInt8], count n: Int) {
        defer { for i in 0..<min(n, buf.count) { buf[i] = 0 } }
        guard n < buf.count else {
            lock.withLock { tally.truncated += 1 }
            return
        }
        var slice = Array(buf[0..<n])
        defer { for i in slice.indices { slice[i] = 0 } }
        if slice.starts(with: IKEKeyRecord.prefix) {
            do {
                var r = try IKEKeyRecord.parse(slice)
                let receiver = lock.withLock { () -> (@Sendable (IKEKeyRecord) -> Void)? in
                    tally.ikeKeyRecords += 1
                    return ikeKeys
                }
                receiver?(r)
                r.wipe()
            } catch {
                lock.withLock {
                    tally.malformed += 1
                    lastError = error
                }
            }
            return
        }
        do {
            var r = try KeyRecord.parse(slice)
            lock.withLock { tally.records += 1 }
            deliver(r)
            r.wipe()
        } catch {
            lock.withLock {
                tally.malformed += 1
                lastError = error
            }
        }
    }

    /// The plugin restarted (charon restarted): connect again, slowly, checking credentials again.
    private func reconnect() {
        usleep(200_000)
        do {
            let s = try Self.connect(path, trustedUID: trustedUID)
            lock.withLock {
                fd = s
                tally.reconnects += 1
            }
        } catch .untrustedListener {
            lock.withLock { tally.untrusted += 1 }
        } catch {}
    }
}
