// A pseudo-terminal whose slave is reachable through a symlink, the way a USB modem appears as /dev/ttyUSB2.
import CHandsetShim
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

final class PseudoTerminal: @unchecked Sendable {
    let master: Int32
    /// Kept open by the simulator so the master never sees EIO/HUP while no client is attached.
    private let keepAlive: Int32
    let slavePath: String
    let linkPath: String?

    init(linkPath: String?) throws(SystemCallError) {
        // The shim's pty opener (serial.c, also behind BearerDriver's PtyPair): the master non-blocking, the slave
        // in raw mode (no echo, no CR/LF mapping; clients usually set this too, a modem must not depend on it).
        var m: Int32 = -1
        var s: Int32 = -1
        var name = [CChar](repeating: 0, count: 128)
        let rc = hs_pty_open(&m, &s, &name, name.count)
        guard rc == 0 else { throw SystemCallError(call: "posix_openpt/grantpt/unlockpt/ptsname_r/open", errno: -rc) }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
