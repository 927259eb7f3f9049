import CHandsetShim
import Testing
@testable import HandsetCore

// Known answers, byte-exact. The ESP vectors live in SelfTest+Vectors.swift (so the board runs them too) and
// are cited there: draft-mcgrew-gcm-test-01 §4 cases 1-3, 5, 6, 8-14 and RFC 7634 Appendix A. This file checks
// them through its own path ([UInt8], a bigger table) rather than the self-test's helpers.

extension ESPVector: CustomTestStringConvertible {
    public var testDescription: String { "\(name)" }
}

/// Hex with optional whitespace, as the vectors print it.
func hexBytes(_ s: StaticString) -> [UInt8] {
    let digits = "\(s)".unicodeScalars.filter { !$0.properties.isWhitespace }.map { Character($0) }
    precondition(digits.count % 2 == 0, "odd hex")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func testSA(_ v: ESPVector, _ direction: SADirection, keyLength: Int) -> SAParameters {
    SAParameters(spi: v.spi, direction: direction, algorithm: v.algorithm, keyLength: keyLength, salt: v.salt,
                 local: IPAddress(10, 0, 0, 1), selector: SelectorPattern(remote: .anyV4, prefix: 0),
                 peer: IPAddress(192, 0, 2, 1), esn: v.esn)
}

@Suite struct ESPKnownAnswerTests {
    @Test(arguments: SelfTest.espVectors)
    func sealIsByteExact(_ v: ESPVector) throws {
        let key = hexBytes(v.key), payload = hexBytes(v.payload), packet = hexBytes(v.packet)
        var table = SATable<8>()
        let slot = try key.withUnsafeBytes { k throws(SAError) in try table.install(testSA(v, .outbound, keyLength: k.count), key: k) }
        table.primeSequence(slot: slot, next: v.seq)
        var out = [UInt8](repeating: 0xee, count: packet.count + 32)
        let n = try payload.withUnsafeBytes { p in
            try out.withUnsafeMutableBytes { o in try table.seal(slot: slot, payload: p, nextHeader: v.nextHeader, into: o, iv: v.iv) }
        }
        #expect(n == packet.count)
        #expect(Array(out[0..<n]) == packet)
        // Only the low 32 bits of an ESN travel (RFC 4303 §2.2.1).
        #expect(Array(packet[4..<8]) == [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v.seq >> $0) })
        #expect(table.snapshot(slot: slot)?.seq == v.seq)
        #expect(table.snapshot(slot: slot)?.counters.packets == 1)
    }

    @Test(arguments: SelfTest.espVectors)
    func openRecoversPayload(_ v: ESPVector) throws {
        let key = hexBytes(v.key), payload = hexBytes(v.payload), packet = hexBytes(v.packet)
        var table = SATable<8>()
        let slot = try key.withUnsafeBytes { k throws(SAError) in try table.install(testSA(v, .inbound, keyLength: k.count), key: k) }
        table.primeSequence(slot: slot, next: v.seq)
        var out = [UInt8](repeating: 0, count: packet.count)
        let r = try packet.withUnsafeBytes { w in try out.withUnsafeMutableBytes { o in try table.open(w, into: o) } }
        #expect(r.nextHeader == v.nextHeader)
        #expect(Array(out[0..<r.length]) == payload)
        #expect(table.snapshot(slot: slot)?.windowTop == v.seq)
        #expect(table.snapshot(slot: slot)?.counters.bytes == UInt64(payload.count))
        // The same packet again is a replay.
        #expect(throws: ESPError.replayed) {
            try packet.withUnsafeBytes { w in try out.withUnsafeMutableBytes { o in _ = try table.open(w, into: o) } }
        }
    }

    @Test func selfTestRunsEveryVector() {
        let r = SelfTest.run()
        #expect(r.failed == 0)
        #expect(r.passed == SelfTest.espVectors.count * 3 + 2)
        #expect(SelfTest.espVectors.count == 13)
    }

    @Test func vectorsCoverBothKeySizesESNAndChaCha() {
        let vs = SelfTest.espVectors
        #expect(vs.contains { $0.algorithm == .aesGCM && hexBytes($0.key).count == 16 })
        #expect(vs.contains { $0.algorithm == .aesGCM && hexBytes($0.key).count == 32 })
        #expect(vs.contains { $0.esn && $0.seq > UInt64(UInt32.max) })
        #expect(vs.contains { $0.algorithm == .chacha20Poly1305 })
    }

    /// The self-test's checks must be able to fail: a vector with one wrong field is reported as such.
    @Test func selfTestDetectsAWrongVector() {
        let good = SelfTest.espVectors[0]
        let badHeader = ESPVector(name: good.name, algorithm: good.algorithm, salt: good.salt, spi: good.spi, seq: good.seq,
                                  esn: good.esn, iv: good.iv, nextHeader: good.nextHeader &+ 1, key: good.key,
                                  payload: good.payload, packet: good.packet)
        let badSalt = ESPVector(name: good.name, algorithm: good.algorithm, salt: good.salt ^ 1, spi: good.spi, seq: good.seq,
                                esn: good.esn, iv: good.iv, nextHeader: good.nextHeader, key: good.key,
                                payload: good.payload, packet: good.packet)
        #expect(SelfTest.sealMatches(good) && SelfTest.openMatches(good))
        #expect(!SelfTest.sealMatches(badHeader))
        #expect(!SelfTest.openMatches(badHeader))
        #expect(!SelfTest.sealMatches(badSalt))
        #expect(!SelfTest.openMatches(badSalt))
        #expect(SelfTest.rejectsTamperedICV(badSalt))  // wrong salt fails authentication too
    }

    /// RFC 4231 §4.3, test case 2.
    @Test func hmacSHA256RFC4231Case2() {
        let key = Array("Jefe".utf8), msg = Array("what do ya want for nothing?".utf8)
        var mac = [UInt8](repeating: 0, count: 32)
        let rc = hs_hmac_sha256(key, key.count, msg, msg.count, &mac)
        #expect(rc == Int32(HS_OK))
        #expect(mac == hexBytes("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
    }

    /// RFC 5869 Appendix A.1, test case 1.
    @Test func hkdfSHA256RFC5869Case1() {
        let ikm = [UInt8](repeating: 0x0b, count: 22), salt = (0...12).map { UInt8($0) }, info = (0xf0...0xf9).map { UInt8($0) }
        var okm = [UInt8](repeating: 0, count: 42)
        let rc = hs_hkdf_sha256(salt, salt.count, ikm, ikm.count, info, info.count, &okm, okm.count)
        #expect(rc == Int32(HS_OK))
        #expect(okm == hexBytes("""
            3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865
            """))
    }
}
