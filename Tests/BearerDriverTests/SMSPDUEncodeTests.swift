import Testing
@testable import BearerDriver

func address(_ s: String) throws(SMSPDUError) -> SMSAddress {
    let r = Array(s.utf8).withUnsafeBytes { raw in Result { () throws(SMSPDUError) in try SMSAddress(number: raw) } }
    return try r.get()
}

/// All parts as hex lines, plus each part's AT+CMGS length.
func encodeAll(to: String, data: [UInt8], options: SMSSubmitOptions) throws -> [(hex: String, length: Int)] {
    let dest = try address(to)
    let parts = try #require(SMSPDU.submitPartCount(dataCount: data.count, options: options))
    var lines: [(String, Int)] = []
    for i in 0..<parts {
        var out = [UInt8](repeating: 0, count: SMSPDU.maxOctets)
        let r = data.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                Result { () throws(SMSPDUError) in
                    try SMSPDU.encodeSubmit(to: dest, data: src, part: i, options: options, into: dst)
                }
            }
        }
        let (n, len) = try r.get()
        lines.append((hexString(Array(out[0..<n])), len))
    }
    return lines
}

@Suite struct SMSPDUEncodeTests {
    // python-gsmmodem test_pdu.py test_decode, 8-bit SUBMIT: same TPDU, with SMSC field 00 instead of +2781191.
    @Test func singlePartMatchesPublishedTPDU() throws {
        let parts = try encodeAll(to: "+27821234567", data: Array("Hello world!".utf8), options: .init())
        #expect(parts.count == 1)
        #expect(parts[0].hex == "0001000B917228214365F700040C48656C6C6F20776F726C6421")
        #expect(parts[0].length == 25)
    }

    // nRF sms_test.c test_send_len9_number5: address field 05 91 21 43 F5 (odd digit count, F filler).
    @Test func oddLengthNumberGetsFiller() throws {
        let parts = try encodeAll(to: "+12345", data: [0xAB], options: .init())
        #expect(parts[0].hex == "00010005912143F5000401AB")
        #expect(parts[0].length == parts[0].hex.count / 2 - 1)
        let national = try encodeAll(to: "0129998765", data: [], options: .init())
        #expect(national[0].hex == "0001000A8110929978560004" + "00")
    }

    // IE encodings from python-gsmmodem TestUdhPortAddress / TestUdhConcatenation:
    // ports 100/50 -> 04026432, 1234/5222 -> 050404D21466.
    @Test(arguments: [(UInt16(100), UInt16(50), "04026432"), (1234, 5222, "050404D21466")])
    func portIEsMatchPublishedEncoding(_ dst: UInt16, _ src: UInt16, _ ie: String) throws {
        var o = SMSSubmitOptions()
        o.destinationPort = dst
        o.sourcePort = src
        let parts = try encodeAll(to: "+1", data: [0x01, 0x02], options: o)
        let udhl = String(format2(ie.count / 2))
        #expect(parts[0].hex.hasSuffix(udhl + ie + "0102"))
        #expect(parts[0].hex.hasPrefix("0041"))  // UDHI set
        let m = try decodeHex(parts[0].hex)
        #expect(m.type == .submit)
        #expect(m.header.ports == SMSPorts(destination: dst, source: src, wide: ie.hasPrefix("05")))
        #expect(payload(m) == [0x01, 0x02])
    }

    // Concat IEs 0003170301 (ref 23, 3 parts, part 1) and 080401800402 (ref 384, 4 parts, part 2).
    @Test func concatIEsMatchPublishedEncoding() throws {
        var o = SMSSubmitOptions()
        o.reference = 23
        let three = try encodeAll(to: "+1", data: [UInt8](repeating: 7, count: 134 * 2 + 1), options: o)
        #expect(three.count == 3)
        #expect(three[0].hex.contains("0500031703" + "01"))
        o.reference = 384
        let four = try encodeAll(to: "+1", data: [UInt8](repeating: 7, count: 133 * 3 + 1), options: o)
        #expect(four.count == 4)
        #expect(four[1].hex.contains("06080401800402"))
    }

    // (data octets, port, parts): 140 fits one part; with 8-bit ports (UDH 5) 135 does; 16-bit ports + 8-bit concat leave 128.
    static let splits: [(Int, UInt16?, Int)] = [
        (140, nil, 1), (141, nil, 2), (268, nil, 2), (269, nil, 3),
        (135, 200, 1), (136, 200, 2), (300, 9200, 3),
    ]

    @Test(arguments: splits)
    func splitsWithinThe140OctetLimit(_ count: Int, _ port: UInt16?, _ expectedParts: Int) throws {
        var o = SMSSubmitOptions()
        o.destinationPort = port
        o.sourcePort = port ?? 0
        o.reference = 0x42
        let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let parts = try encodeAll(to: "+4912345678", data: data, options: o)
        #expect(parts.count == expectedParts)
        var joined: [UInt8] = []
        for (i, p) in parts.enumerated() {
            let m = try decodeHex(p.hex)
            let udlOffset = 13  // SMSC, first octet, MR, DA (2 + 5 for 9 digits), PID, DCS
            let udl: UInt8 = hexBytes(p.hex)[udlOffset]
            #expect(udl <= 140)
            #expect(p.length == p.hex.count / 2 - 1)
            #expect(m.header.ports?.destination == port)
            if expectedParts > 1 {
                #expect(m.header.concat == SMSConcat(reference: 0x42, total: UInt8(expectedParts), sequence: UInt8(i + 1),
                                                     wideReference: false))
            } else {
                #expect(m.header.concat == nil)
            }
            joined += payload(m)
        }
        #expect(joined == data)
    }

    @Test func forcedWideFieldsUseIEI05And08() throws {
        var o = SMSSubmitOptions()
        o.destinationPort = 16
        o.sourcePort = 17
        o.widePorts = true
        o.reference = 5
        o.wideReference = true
        let parts = try encodeAll(to: "+1", data: [UInt8](repeating: 1, count: 200), options: o)
        let m = try decodeHex(parts[1].hex)
        #expect(m.header.ports == SMSPorts(destination: 16, source: 17, wide: true))
        #expect(m.header.concat == SMSConcat(reference: 5, total: 2, sequence: 2, wideReference: true))
    }

    @Test func statusReportAndValidityBits() throws {
        var o = SMSSubmitOptions()
        o.requestStatusReport = true
        o.validity = 0xA7
        o.messageReference = 9
        let parts = try encodeAll(to: "+1", data: [0xEE], options: o)
        #expect(parts[0].hex == "0031090191F10004A701EE")
        let m = try decodeHex(parts[0].hex)
        #expect(payload(m) == [0xEE])
    }

    @Test(arguments: ["", "+", "12a45x", "+123456789012345678901"])
    func rejectsBadNumbers(_ n: String) {
        #expect(throws: SMSPDUError.badParameter) { _ = try address(n) }
    }

    @Test func rejectsOutOfRangeRequestsWithoutWriting() throws {
        let dest = try address("+123")
        let tooMuch = [UInt8](repeating: 0, count: 134 * 255 + 1)
        #expect(SMSPDU.submitPartCount(dataCount: tooMuch.count, options: .init()) == nil)
        #expect(SMSPDU.submitPartCount(dataCount: 134 * 255, options: .init()) == 255)
        var out = [UInt8](repeating: 0xEE, count: 20)
        for (data, part) in [(tooMuch, 0), ([UInt8](repeating: 1, count: 10), 1), ([UInt8](repeating: 1, count: 10), -1)] {
            #expect(throws: SMSPDUError.badParameter) {
                _ = try data.withUnsafeBytes { src in
                    try out.withUnsafeMutableBytes { try SMSPDU.encodeSubmit(to: dest, data: src, part: part, options: .init(), into: $0) }
                }
            }
        }
        #expect(throws: SMSPDUError.bufferTooSmall) {
            _ = try [UInt8](repeating: 1, count: 30).withUnsafeBytes { src in
                try out.withUnsafeMutableBytes { try SMSPDU.encodeSubmit(to: dest, data: src, part: 0, options: .init(), into: $0) }
            }
        }
        #expect(out.allSatisfy { $0 == 0xEE })
    }
}

private func format2(_ v: Int) -> String { hexString([UInt8(v)]) }
