// A pseudo-terminal whose slave is reachable through a symlink, the way a USB modem appears as /dev/ttyUSB2.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct SystemCallError: Error, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

// glibc declares these only under _XOPEN_SOURCE, which the Swift Glibc module does not set; they take and return ints.
@_silgen_name("posix_openpt") private func sys_posix_openpt(_ flags: Int32) -> Int32
@_silgen_name("grantpt") private func sys_grantpt(_ fd: Int32) -> Int32
@_silgen_name("unlockpt") private func sys_unlockpt(_ fd: Int32) -> Int32
@_silgen_name("ptsname_r") private func sys_ptsname_r(_ fd: Int32, _ buf: UnsafeMutablePointer<CChar>, _ len: Int) -> Int32

final class PseudoTerminal: @unchecked Sendable {
    let master: Int32
    /// Kept open by the simulator so the master never sees EIO/HUP while no client is attached.
    private let keepAlive: Int32
    let slavePath: String
    let linkPath: String?

    init(linkPath: String?) throws(SystemCallError) {
        let m = sys_posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard m >= 0 else { throw SystemCallError(call: "posix_openpt", errno: errno) }
        var name = [CChar](repeating: 0, count: 128)
        guard sys_grantpt(m) == 0, sys_unlockpt(m) == 0, sys_ptsname_r(m, &name, name.count) == 0 else {
            let e = errno
            Glibc.close(m)
            throw SystemCallError(call: "grantpt/unlockpt/ptsname_r", errno: e)
        }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard s >= 0 else {
            let e = errno
            Glibc.close(m)
            throw SystemCallError(call: "open \(path)", errno: e)
        }
        // Raw line discipline: no echo, no CR/LF mapping. Clients usually set this too; a modem must not depend on it.
        var t = termios()
        tcgetattr(s, &t)
        cfmakeraw(&t)
        cfsetispeed(&t, speed_t(B115200))
        cfsetospeed(&t, speed_t(B115200))
        tcsetattr(s, TCSANOW, &t)
        let flags = fcntl(m, F_GETFL)
        _ = fcntl(m, F_SETFL, flags | O_NONBLOCK)
        master = m
        keepAlive = s
        slavePath = path
        if let linkPath {
            // Replace a stale link from an earlier run, but never a regular file.
            var st = stat()
            if lstat(linkPath, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFLNK else {
                    Glibc.close(m); Glibc.close(s)
                    throw SystemCallError(call: "refusing to replace non-symlink \(linkPath)", errno: EEXIST)
                }
                unlink(linkPath)
            }
            guard symlink(path, linkPath) == 0 else {
                let e = errno
                Glibc.close(m); Glibc.close(s)
                throw SystemCallError(call: "symlink \(linkPath)", errno: e)
            }
        }
        self.linkPath = linkPath
    }

    /// Writes all of `bytes`, waiting briefly when the pty buffer is full. Drops what does not fit in `patience`.
    @discardableResult
    func writeAll(_ bytes: [UInt8], patience: TimeInterval = 2) -> Bool {
        var offset = 0
        let deadline = Date().addingTimeInterval(patience)
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno != EAGAIN && errno != EINTR { return false }
            if Date() > deadline { return false }
            usleep(2000)
        }
        return true
    }

    func readAvailable() -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buf[0..<n]) : []
    }

    /// Removes the symlink, but only if it still points at this pty (a later run may own the path now).
    func removeLink() {
        guard let linkPath else { return }
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(linkPath, &buf, buf.count - 1)
        if n > 0, String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == slavePath {
            unlink(linkPath)
        }
    }

    func closeDescriptors() {
        Glibc.close(keepAlive)
        Glibc.close(master)
    }
}
