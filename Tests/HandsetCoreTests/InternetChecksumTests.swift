import Testing
@testable import HandsetCore

@Suite struct InternetChecksumTests {
    /// RFC 1071 §3, numerical example: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
    @Test func rfc1071Example() {
        let b: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        #expect(b.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 8) } == 0xDDF2)
        var c = InternetChecksum()
        b.withUnsafeBytes { c.add($0, from: 0, count: 8) }
        #expect(c.value == 0x220D)
    }

    /// The word-at-a-time sum against the definition (RFC 1071 §4.1: big-endian 16-bit words, odd byte padded with
    /// zero, end-around carry) for every length and start offset that exercises the 32-, 8- and tail-byte paths,
    /// on data that carries a lot (0xFF runs) and on mixed data.
    @Test(arguments: [UInt8(0xFF), 0x00, 0x5A])
    func matchesTheDefinition(fill: UInt8) {
        var x: UInt32 = 0x1234_5678
        let data: [UInt8] = (0..<200).map { k in
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            return k % 3 == 0 ? fill : UInt8(truncatingIfNeeded: x)
        }
        var mismatches = 0
        data.withUnsafeBytes { b in
            for start in 0..<8 {
                for n in 0...(data.count - 8) {
                    var ref: UInt64 = 0
                    var i = start
                    while i + 1 < start + n { ref += UInt64(b[i]) << 8 | UInt64(b[i + 1]); i += 2 }
                    if i < start + n { ref += UInt64(b[i]) << 8 }
                    while ref >> 16 != 0 { ref = (ref & 0xFFFF) + (ref >> 16) }
                    if InternetChecksum.sum(b.baseAddress! + start, count: n) != UInt16(ref) { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
    }
}
