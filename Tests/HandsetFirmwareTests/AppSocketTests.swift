import CHandsetShim
import Foundation
import Testing
@testable import handset_fw

/// The app interface's socket (AppSocket.swift, app_socket.c) against the real kernel: file modes, the sender's
/// uid from SCM_CREDENTIALS, and who the app is. A second real user is tested end to end in
/// tests/interop/test_firmware_app_socket.py.
@Suite(.serialized) struct AppSocketTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "appsock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> SocketPath {
        var p = SocketPath(repeating: 0)
        for (i, b) in "\(dir)/\(name)".utf8.enumerated() { p[i] = CChar(bitPattern: b) }
        return p
    }

    /// An application's socket, bound at `name` (nil: unnamed).
    func client(_ name: String?) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let name {
            var a = try address("\(dir)/\(name)")
            let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            try #require(rc == 0)
        }
        return fd
    }

    func address(_ p: String) throws -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { $0.copyBytes(from: Array(p.utf8)) }
        return a
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var a = try address("\(dir)/app.sock")
        let n = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            } }
        }
        try #require(n == bytes.count)
    }

    func received(_ fd: Int32) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 64)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n >= 0 ? Array(buf[0..<n]) : nil
    }

    func next(_ s: inout AppSocket) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 64)
        let n = buf.withUnsafeMutableBytes { s.receive(into: $0) }
        return Array(buf[0..<n])
    }

    @Test func socketFileIsOwnerOnlyOrGroupWhenConfigured() throws {
        var s = AppSocket()
        #expect(s.open(path: path("app.sock"), owner: geteuid(), group: -1) == 0)
        var st = stat()
        #expect(lstat("\(dir)/app.sock", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o600 && (st.st_mode & S_IFMT) == S_IFSOCK)
        s.close()
        #expect(access("\(dir)/app.sock", F_OK) != 0)  // removed on close

        var g = AppSocket()
        #expect(g.open(path: path("app.sock"), owner: geteuid(), group: Int64(getegid())) == 0)
        #expect(lstat("\(dir)/app.sock", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o660 && st.st_gid == getegid())
        g.close()
    }

    @Test func anotherFileAtThePathIsLeftAlone() throws {
        _ = FileManager.default.createFile(atPath: "\(dir)/app.sock", contents: Data("keep".utf8))
        var s = AppSocket()
        #expect(s.open(path: path("app.sock"), owner: geteuid(), group: -1) == -EEXIST)
        #expect(FileManager.default.contents(atPath: "\(dir)/app.sock") == Data("keep".utf8))
    }

    @Test func unknownOpcodeNeverChangesTheApp() throws {
        var s = AppSocket()
        #expect(s.open(path: path("app.sock"), owner: geteuid(), group: -1) == 0)
        defer { s.close() }
        let a = try client("a.sock"), b = try client("b.sock")
        defer { close(a); close(b) }
        try send(a, [AppOp.register])
        #expect(next(&s) == [AppOp.register])
        try send(b, [0x7F, 1, 2, 3])
        #expect(next(&s) == [])  // not a request: skipped
        #expect(s.unknown == 1 && s.refused == 0)
        [UInt8]([0x84, 1]).withUnsafeBytes { s.send($0) }
        #expect(received(a) == [0x84, 1])
        #expect(received(b) == nil)  // b never became the app
    }

    @Test func anotherUIDIsRefusedAndCounted() throws {
        var s = AppSocket()
        // The socket's owner is someone else: this process's datagrams carry the wrong uid.
        let other: UInt32 = geteuid() == 65534 ? 65533 : 65534
        #expect(s.open(path: path("app.sock"), owner: other, group: -1) == 0)
        defer { s.close() }
        let a = try client("a.sock")
        defer { close(a) }
        try send(a, [AppOp.status])
        #expect(next(&s) == [])
        #expect(s.refused == 1 && !s.hasApp)
        [UInt8]([0x84, 1]).withUnsafeBytes { s.send($0) }
        #expect(received(a) == nil)  // secrets, fetch answers and ESP never reach it
    }

    @Test func anUnnamedSenderIsRefused() throws {
        var s = AppSocket()
        #expect(s.open(path: path("app.sock"), owner: geteuid(), group: -1) == 0)
        defer { s.close() }
        let u = try client(nil)
        defer { close(u) }
        try send(u, [AppOp.register])
        #expect(next(&s) == [])
        #expect(s.refused == 1 && !s.hasApp)
    }
}
