import Foundation
import Testing
@testable import ProxyIKE

/// Key records as the issue 15 contract (plugin -> gateway) lays them out.
@Suite struct KeyRecordTests {
    static let keyIn = String(repeating: "11", count: 32) + "a1a2a3a4"
    static let keyOut = String(repeating: "22", count: 32) + "b1b2b3b4"

    static func lines(event: String = "up", encr: String = "aes256gcm16", keyIn: String? = KeyRecordTests.keyIn,
                      keyOut: String? = KeyRecordTests.keyOut) -> [String] {
        ["v=1", "event=\(event)", "ike_name=hs-00000000000000a1", "child_name=hs-00000000000000a1-1",
         "ike_id=3", "child_id=7", "initiator=1", "local_id=a1@handset.invalid", "remote_id=server.example",
         "local=10.99.0.2:4500", "remote=10.99.0.1:4500", "encr=\(encr)", "mode=tunnel", "esn=0",
         "spi_in=c1a2b3d4", "spi_out=0000abcd"]
            + (keyIn.map { ["key_in=\($0)"] } ?? []) + (keyOut.map { ["key_out=\($0)"] } ?? [])
            + ["local_ts=10.201.0.5/32", "remote_ts=10.200.0.1/32 udp/7,10.200.0.2/32", "soft=2700", "hard=3600"]
    }

    static func bytes(_ l: [String]) -> [UInt8] { Array((l.joined(separator: "\n") + "\n").utf8) }

    @Test func parsesAnUpRecord() throws {
        let r = try KeyRecord.parse(Self.bytes(Self.lines()))
        #expect(r.event == .up && r.ikeName == "hs-00000000000000a1" && r.childName == "hs-00000000000000a1-1")
        #expect(r.ikeID == 3 && r.childID == 7 && r.initiator)
        #expect(r.local == .init(address: "10.99.0.2", port: 4500) && r.remote.port == 4500)
        #expect(r.encryption == .aes256gcm16 && r.tunnel && !r.esn)
        #expect(r.spiIn == 0xC1A2_B3D4 && r.spiOut == 0xABCD)
        #expect(r.keyIn == [UInt8](repeating: 0x11, count: 32) + [0xA1, 0xA2, 0xA3, 0xA4])
        #expect(r.keyOut.count == 36 && r.keyOut.last == 0xB4)
        #expect(r.remoteTS == ["10.200.0.1/32 udp/7", "10.200.0.2/32"])
        #expect(r.softSeconds == 2700 && r.hardSeconds == 3600)
    }

    @Test func aDownRecordHasNoKeys() throws {
        let r = try KeyRecord.parse(Self.bytes(Self.lines(event: "down", keyIn: nil, keyOut: nil)))
        #expect(r.event == .down && r.keyIn.isEmpty && r.keyOut.isEmpty && r.spiOut == 0xABCD)
    }

    @Test func keyLengthFollowsTheAlgorithm() throws {
        let k128 = String(repeating: "33", count: 20)
        let r = try KeyRecord.parse(Self.bytes(Self.lines(encr: "aes128gcm16", keyIn: k128, keyOut: k128)))
        #expect(r.keyIn.count == 20)
        // A 256-bit key under aes128gcm16 is refused.
        #expect(throws: KeyRecordError.badValue(key: "key_in")) {
            try KeyRecord.parse(Self.bytes(Self.lines(encr: "aes128gcm16")))
        }
    }

    @Test func wipeOverwritesTheKeys() throws {
        var r = try KeyRecord.parse(Self.bytes(Self.lines()))
        r.wipe()
        #expect(r.keyIn.isEmpty && r.keyOut.isEmpty)
    }

    @Test func malformedRecordsAreTypedErrors() {
        func refuse(_ l: [String], _ e: KeyRecordError, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(throws: e, sourceLocation: sourceLocation) { try KeyRecord.parse(Self.bytes(l)) }
        }
        var l = Self.lines()
        l[0] = "v=2"
        refuse(l, .unsupportedVersion("2"))
        l = Self.lines(); l.swapAt(4, 5)
        refuse(l, .unexpectedKey(line: 5, expected: "ike_id", found: "child_id"))
        l = Self.lines(); l[14] = "spi_in=zz"
        refuse(l, .badValue(key: "spi_in"))
        l = Self.lines(); l[14] = "spi_in=00000001"  // reserved SPI
        refuse(l, .badValue(key: "spi_in"))
        l = Self.lines(); l[16] = "key_in=" + String(repeating: "g", count: 72)
        refuse(l, .badValue(key: "key_in"))
        l = Self.lines(); l[11] = "encr=aes128ccm8"
        refuse(l, .badValue(key: "encr"))
        l = Self.lines(); l[9] = "local=10.99.0.2"
        refuse(l, .badValue(key: "local"))
        refuse(Array(Self.lines().prefix(10)), .missingKey("remote"))
        refuse(Self.lines() + ["extra=1"], .trailingData)
        #expect(throws: KeyRecordError.notUTF8) { try KeyRecord.parse([0x76, 0x3D, 0xFF]) }
        #expect(throws: KeyRecordError.tooLarge(KeyRecord.maxSize + 1)) {
            try KeyRecord.parse([UInt8](repeating: 0x41, count: KeyRecord.maxSize + 1))
        }
        // The error text never carries the value (it may be key material).
        #expect(!"\(KeyRecordError.badValue(key: "key_in"))".contains("11"))
    }

    /// A reader counts malformed records and wipes its buffer either way.
    @Test func readerCountsMalformedAndWipesItsBuffer() {
        let got = Box()
        let reader = KeyRecordReader(path: "/nonexistent") { r in got.add(r) }
        var buf = [UInt8](repeating: 0, count: KeyRecord.maxSize + 1)
        let good = Self.bytes(Self.lines())
        buf.replaceSubrange(0..<good.count, with: good)
        reader.handle(&buf, count: good.count)
        #expect(buf.allSatisfy { $0 == 0 })
        let bad = Array("v=1\nevent=sideways\n".utf8)
        buf.replaceSubrange(0..<bad.count, with: bad)
        reader.handle(&buf, count: bad.count)
        reader.handle(&buf, count: buf.count)  // MSG_TRUNC said longer than a record may be
        #expect(reader.counters == .init(records: 1, malformed: 1, truncated: 1))
        #expect(reader.lastMalformed == .badValue(key: "event"))
        #expect(got.count == 1)
    }

    @Test func aMissingSocketIsATypedError() {
        let reader = KeyRecordReader(path: "/nonexistent/keys.sock") { _ in }
        #expect(throws: KeySocketError.connect(path: "/nonexistent/keys.sock", errno: ENOENT)) { try reader.start() }
    }

    /// SO_PEERCRED: a listener run by a uid we do not trust is refused before anything is read.
    @Test func anUntrustedListenerIsRefused() throws {
        let path = NSTemporaryDirectory() + "keys-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let s = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        defer { close(s); unlink(path) }
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(rc == 0 && listen(s, 1) == 0)
        let me = getuid()
        let reader = KeyRecordReader(path: path, trustedUID: me &+ 1) { _ in }
        #expect(throws: KeySocketError.untrustedListener(uid: me)) { try reader.start() }
        let trusting = KeyRecordReader(path: path, trustedUID: me) { _ in }
        #expect(throws: Never.self) { try trusting.start() }
        trusting.stop()
    }

    /// Over a real SEQPACKET socket: records arrive one per message, and when the listener goes away (charon
    /// restarted) the reader connects again, checks credentials again, and goes on delivering.
    @Test func readerDeliversAndReconnectsAfterARestart() throws {
        let path = NSTemporaryDirectory() + "keys-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        func listener() throws -> Int32 {
            unlink(path)
            // CLOEXEC: suites running beside this one spawn processes (PostgreSQL, watchdogs) that would otherwise
            // inherit the listener and the accepted socket, so closing them here would not end the connection.
            let s = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var a = sockaddr_un()
            a.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
            let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            try #require(rc == 0 && listen(s, 1) == 0)
            return s
        }
        /// The reader's connection, or a failed test after 5 s: a blocking accept would hang the whole run.
        func accepted(_ l: Int32) throws -> Int32 {
            var p = pollfd(fd: l, events: Int16(POLLIN), revents: 0)
            try #require(poll(&p, 1, 5_000) == 1, "the reader did not connect")
            let c = accept(l, nil, nil)  // Glibc's module has no accept4
            try #require(c >= 0 && fcntl(c, F_SETFD, FD_CLOEXEC) == 0)
            return c
        }
        func send(_ fd: Int32, _ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } }
        func eventually(_ cond: () -> Bool) -> Bool {
            for _ in 0..<60 where !cond() { usleep(50_000) }
            return cond()
        }
        let got = Box()
        let reader = KeyRecordReader(path: path, trustedUID: getuid()) { got.add($0) }
        var l = try listener()
        try reader.start()
        var c = try accepted(l)
        send(c, Self.bytes(Self.lines()))
        send(c, Array("v=1\nevent=up\n".utf8))
        #expect(eventually { got.count == 1 && reader.counters.malformed == 1 })
        // charon goes away and comes back on the same path.
        close(c)
        close(l)
        l = try listener()
        defer { close(l) }
        c = try accepted(l)  // once the reader is back
        defer { close(c) }
        send(c, Self.bytes(Self.lines(event: "down", keyIn: nil, keyOut: nil)))
        #expect(eventually { got.count == 2 })
        #expect(reader.counters.reconnects == 1 && reader.counters.records == 2)
        reader.stop()
    }
}

final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [KeyRecord] = []
    func add(_ r: KeyRecord) { lock.withLock { records.append(r) } }
    var count: Int { lock.withLock { records.count } }
}
