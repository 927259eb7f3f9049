import Testing
@testable import BearerDriver

// Shared helpers for the SMS test files.
func hexBytes(_ s: String) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: s.utf8.count / 2 + 1)
    let n = Array(s.utf8).withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in (try? SMSHex.decode(src, into: dst)) ?? -1 }
    }
    precondition(n >= 0, "bad hex in test vector")
    return Array(out[0..<n])
}

func decodeHex(_ s: String, smscPresent: Bool = true) throws(SMSPDUError) -> SMSMessage {
    let ascii = Array(s.utf8)
    let r = ascii.withUnsafeBytes { raw in
        Result { () throws(SMSPDUError) -> SMSMessage in try SMSPDU.decode(hex: raw, smscPresent: smscPresent) }
    }
    return try r.get()
}

func text(_ m: SMSMessage) -> String {
    var buf = [UInt8](repeating: 0, count: SMSText.maxUTF8)
    let n = buf.withUnsafeMutableBytes { m.writeText(into: $0) }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

func addressString(_ a: SMSAddress) -> String {
    var buf = [UInt8](repeating: 0, count: 48)
    let n = buf.withUnsafeMutableBytes { a.write(into: $0) }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

func payload(_ m: SMSMessage) -> [UInt8] { (0..<m.payloadCount).map { m[payload: $0] } }

func hexString(_ b: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: b.count * 2)
    _ = b.withUnsafeBytes { src in out.withUnsafeMutableBytes { try! SMSHex.encode(src, into: $0) } }
    return String(decoding: out, as: UTF8.self)
}

@Suite struct SMSHexTests {
    @Test func roundTripsEitherCaseAndTrimsLineEnds() throws {
        let ascii = Array(" 00ff0A7b\r\n".utf8)
        var out = [UInt8](repeating: 0xEE, count: 8)
        let n = try ascii.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try SMSHex.decode(src, into: $0) } }
        #expect(n == 4)
        #expect(Array(out[0..<4]) == [0x00, 0xFF, 0x0A, 0x7B])
        #expect(hexString([0x00, 0xFF, 0x0A, 0x7B]) == "00FF0A7B")
    }

    // nRF Connect SDK tests/lib/sms: test_recv_invalid_hex_characters and test_recv_invalid_header_too_short.
    @Test(arguments: [
        ("00040A91214365870900001220A00285438009123456KLAB", SMSPDUError.badHex),
        ("00040A91214365870900001220A0028543800", SMSPDUError.badHex),
        ("0G", SMSPDUError.badHex),
    ])
    func rejectsNonHex(_ input: String, _ expected: SMSPDUError) {
        let ascii = Array(input.utf8)
        var out = [UInt8](repeating: 0xEE, count: 64)
        #expect(throws: expected) {
            _ = try ascii.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try SMSHex.decode(src, into: $0) } }
        }
        // The odd-length check runs first, so nothing was written for those.
        if input.utf8.count % 2 == 1 { #expect(out.allSatisfy { $0 == 0xEE }) }
    }

    @Test func refusesSmallBuffersWithoutWriting() {
        let ascii = Array("0102030405".utf8)
        var out = [UInt8](repeating: 0xEE, count: 4)
        #expect(throws: SMSPDUError.bufferTooSmall) {
            _ = try ascii.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try SMSHex.decode(src, into: $0) } }
        }
        #expect(out == [0xEE, 0xEE, 0xEE, 0xEE])
        var small = [UInt8](repeating: 0xEE, count: 3)
        #expect(throws: SMSPDUError.bufferTooSmall) {
            _ = try [UInt8(1), 2].withUnsafeBytes { src in try small.withUnsafeMutableBytes { try SMSHex.encode(src, into: $0) } }
        }
        #expect(small == [0xEE, 0xEE, 0xEE])
    }
}
