import Foundation
import Testing
@testable import ProxyIKE

/// The plugin's `ike_keys` record (docs/ike-proxy.md, only with `ike_keys = yes`) and the gateway's `installed`
/// answer on the key socket.
@Suite struct IKEKeyRecordTests {
    static let ske = String(repeating: "ab", count: 32), ska = String(repeating: "cd", count: 32)

    static func lines(integ: String = "12", skAI: String = IKEKeyRecordTests.ska) -> [String] {
        ["v=1", "event=ike_keys", "ike_name=hs-00000000000000a1", "ike_id=4", "spi_i=1b2c3d4e5f607182",
         "spi_r=92a3b4c5d6e7f801", "encr=12", "encr_keysize=256", "integ=\(integ)", "sk_ei=\(ske)", "sk_er=\(ske)",
         "sk_ai=\(skAI)", "sk_ar=\(skAI)"]
    }

    static func bytes(_ l: [String]) -> [UInt8] { Array((l.joined(separator: "\n") + "\n").utf8) }

    @Test func parsesAnIKEKeyRecord() throws {
        var r = try IKEKeyRecord.parse(Self.bytes(Self.lines()))
        #expect(r.ikeName == "hs-00000000000000a1" && r.ikeID == 4)
        #expect(r.spiI == 0x1b2c_3d4e_5f60_7182 && r.spiR == 0x92a3_b4c5_d6e7_f801)
        #expect(r.encryption == 12 && r.encryptionKeySize == 256 && r.integrity == 12)
        #expect(r.skEI == [UInt8](repeating: 0xab, count: 32) && r.skAR == [UInt8](repeating: 0xcd, count: 32))
        r.wipe()
        #expect(r.skEI.isEmpty && r.skER.isEmpty && r.skAI.isEmpty && r.skAR.isEmpty)
    }

    @Test func anAEADHasNoIntegrityKeys() throws {
        let r = try IKEKeyRecord.parse(Self.bytes(Self.lines(integ: "0", skAI: "")))
        #expect(r.integrity == 0 && r.skAI.isEmpty && r.skAR.isEmpty)
    }

    @Test func malformedIKEKeyRecordsAreTypedErrors() {
        var l = Self.lines()
        l[9] = "sk_ei=abc"  // odd length
        #expect(throws: KeyRecordError.badValue(key: "sk_ei")) { try IKEKeyRecord.parse(Self.bytes(l)) }
        l = Self.lines()
        l.swapAt(4, 5)
        #expect(throws: KeyRecordError.unexpectedKey(line: 5, expected: "spi_i", found: "spi_r")) {
            try IKEKeyRecord.parse(Self.bytes(l))
        }
        #expect(throws: KeyRecordError.trailingData) { try IKEKeyRecord.parse(Self.bytes(Self.lines() + ["x=1"])) }
    }

    /// The reader hands ike_keys records to their receiver only, never to the CHILD_SA path, and wipes its buffer.
    @Test func readerRoutesIKEKeysToTheirReceiver() {
        let children = Box()
        let ike = IKEBox()
        let reader = KeyRecordReader(path: "/nonexistent") { children.add($0) }
        var buf = [UInt8](repeating: 0, count: KeyRecord.maxSize + 1)
        let rec = Self.bytes(Self.lines())
        buf.replaceSubrange(0..<rec.count, with: rec)
        reader.handle(&buf, count: rec.count)  // no receiver yet: parsed, counted, dropped
        reader.onIKEKeys { ike.add($0) }
        buf.replaceSubrange(0..<rec.count, with: rec)
        reader.handle(&buf, count: rec.count)
        #expect(buf.allSatisfy { $0 == 0 })
        #expect(children.count == 0 && ike.spis == [0x1b2c_3d4e_5f60_7182])
        #expect(reader.counters.ikeKeyRecords == 2 && reader.counters.records == 0 && reader.counters.malformed == 0)
    }

    /// `installed(spiOut:)` writes the contract's message; with no connection it is counted as unsent.
    @Test func installedIsOneMessageOnTheSocket() throws {
        let path = NSTemporaryDirectory() + "keys-inst-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let l = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        defer { close(l) }
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(l, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(rc == 0 && listen(l, 1) == 0)
        let reader = KeyRecordReader(path: path, trustedUID: getuid()) { _ in }
        #expect(!reader.installed(spiOut: 0x2ab1_183c))  // not started: nowhere to send
        try reader.start()
        defer { reader.stop() }
        let c = accept(l, nil, nil)
        defer { close(c) }
        #expect(reader.installed(spiOut: 0x2ab1_183c))
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
        #expect(String(decoding: buf[0..<max(0, n)], as: UTF8.self) == "v=1\nevent=installed\nspi_out=2ab1183c\n")
        #expect(reader.counters.installedSent == 1 && reader.counters.installedUnsent == 1)
    }
}

final class IKEBox: @unchecked Sendable {
    private let lock = NSLock()
    private var got: [UInt64] = []
    func add(_ r: IKEKeyRecord) { lock.withLock { got.append(r.spiI) } }
    var spis: [UInt64] { lock.withLock { got } }
}
