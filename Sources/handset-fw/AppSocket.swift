import CHandsetShim

typealias SocketPath = InlineArray<108, CChar>

/// The app interface's socket (docs/firmware.md §App interface): an AF_UNIX datagram socket that only its owner
/// may use. The file is 0600 (0660 with `app_group`), and the sender of each datagram, as the kernel reports it
/// (SCM_CREDENTIALS), must be `app_uid`. Anything else is dropped unread and counted.
/// The app is the owner's socket that sent the last valid request; answers go there.
struct AppSocket {
    private(set) var fd: Int32 = -1
    private(set) var path = SocketPath(repeating: 0)
    private(set) var owner: UInt32 = 0
    /// Where answers go: empty until the owner sends a valid request.
    private(set) var app = SocketPath(repeating: 0)
    private var sender = SocketPath(repeating: 0)
    /// Datagrams refused: another uid, no credentials, or an unnamed or abstract sender (nowhere safe to answer:
    /// an abstract name can be taken by anyone once the app has gone).
    private(set) var refused: UInt64 = 0
    /// Datagrams from the owner whose opcode is not a request.
    private(set) var unknown: UInt64 = 0

    var hasApp: Bool { app[0] != 0 }

    /// Binds the socket at `path`; 0 or -errno.
    mutating func open(path: SocketPath, owner: UInt32, group: Int64) -> Int32 {
        self.path = path
        self.owner = owner
        let r = withUnsafeBytes(of: &self.path) { p in hs_app_socket_bind(p.baseAddress!.assumingMemoryBound(to: CChar.self), group) }
        if r >= 0 { fd = r; return 0 }
        return r
    }

    /// The next request from the owner, copied into `buf`: its length, or 0 when none is waiting. Its sender
    /// becomes the app. Refused datagrams and unknown opcodes are skipped (up to 16 a call, so a flood cannot hold
    /// the loop); an unknown opcode never changes where answers go.
    mutating func receive(into buf: UnsafeMutableRawBufferPointer) -> Int {
        guard fd >= 0 else { return 0 }
        for _ in 0..<16 {
            var uid: Int64 = -1
            var fromLength = 0
            let n = withUnsafeMutableBytes(of: &sender) { s in
                Int(hs_app_socket_recv(fd, buf.baseAddress!.assumingMemoryBound(to: UInt8.self), buf.count, &uid,
                                       s.baseAddress!.assumingMemoryBound(to: CChar.self), s.count, &fromLength))
            }
            guard n > 0 else { return 0 }
            guard uid == Int64(owner) else { refuse(uid: uid); continue }
            guard fromLength > 0 else { refuse(uid: uid, unnamed: true); continue }
            guard AppOp.isRequest(buf[0]) else { unknown &+= 1; continue }
            if buf[0] != AppOp.counters { app = sender }  // `handset-fw status` asks without taking the app's place
            return n
        }
        return 0
    }

    func send(_ bytes: UnsafeRawBufferPointer) {
        guard fd >= 0, hasApp else { return }
        var to = app
        _ = withUnsafeBytes(of: &to) { t in
            hs_app_socket_send(fd, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                               t.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    /// Answers the sender of the last request received, whether or not it is the app.
    func answerAsker(_ bytes: UnsafeRawBufferPointer) {
        guard fd >= 0, sender[0] != 0 else { return }
        var to = sender
        _ = withUnsafeBytes(of: &to) { t in
            hs_app_socket_send(fd, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                               t.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    mutating func close() {
        var p = path
        withUnsafeBytes(of: &p) { hs_app_socket_close(fd, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        fd = -1
    }

    private mutating func refuse(uid: Int64, unnamed: Bool = false) {
        refused &+= 1
        // Logged at 1, 2, 4, 8, ... refusals: visible, but a flood cannot fill the log.
        guard refused & (refused - 1) == 0 else { return }
        let why: StaticString = unnamed ? "fw: app datagram refused: sender socket has no path, uid " : "fw: app datagram refused: sender uid "
        LogLine(why).append(uid).append(" (owner ").append(owner).append("), refused so far ").append(refused).emit()
    }
}
