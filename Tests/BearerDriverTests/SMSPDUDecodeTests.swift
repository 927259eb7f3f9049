import Testing
@testable import BearerDriver

/// One published PDU and what it must decode to. nil fields are not checked.
struct DecodeVector: Sendable, CustomTestStringConvertible {
    var source: String
    var hex: String
    var type: SMSMessageType
    var smsc: String?
    var address: String
    var alphabet: SMSAlphabet
    var text: String? = nil
    var data: String? = nil
    var concat: SMSConcat? = nil
    var ports: SMSPorts? = nil
    var timestamp: SMSTimestamp? = nil
    var testDescription: String { source }
}

let decodeVectors: [DecodeVector] = [
    // python-gsmmodem test/test_pdu.py TestSmsPdu.test_decode
    .init(source: "gsmmodem Test2", hex: "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
          type: .deliver, smsc: "+2782913593", address: "+27821234567", alphabet: .gsm7, text: "Test2",
          timestamp: .init(year: 13, month: 3, day: 8, hour: 15, minute: 2, second: 16, quarterHours: 8)),
    .init(source: "gsmmodem AT commands",
          hex: "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
          type: .deliver, smsc: "+85290000000", address: "+85291234567", alphabet: .gsm7,
          text: "It is easy to read text messages via AT commands.",
          timestamp: .init(year: 7, month: 4, day: 12, hour: 23, minute: 25, second: 42, quarterHours: 32)),
    .init(source: "gsmmodem extension table", hex: "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
          type: .deliver, smsc: "+2782913593", address: "+27821234567", alphabet: .gsm7, text: "@{tést}!"),
    .init(source: "gsmmodem SUBMIT with VP", hex: "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
          type: .submit, smsc: "+31624000000", address: "+31628870634", alphabet: .gsm7, text: "www.diafaan.com"),
    .init(source: "gsmmodem concat 7-bit",
          hex: "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20",
          type: .deliver, smsc: "+2781191", address: "2781188", alphabet: .gsm7,
          text: "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. ",
          concat: .init(reference: 0xC3, total: 1, sequence: 1, wideReference: false)),
    .init(source: "gsmmodem UCS-2 SUBMIT", hex: "07914346466554F601000B914316565811F9000806304253F68449",
          type: .submit, smsc: "+34646456456", address: "+34616585119", alphabet: .ucs2, text: "あ叶葉"),
    .init(source: "gsmmodem 8-bit SUBMIT", hex: "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421",
          type: .submit, smsc: "+2781191", address: "+27821234567", alphabet: .data8, data: "48656C6C6F20776F726C6421"),
    // ModemManager src/tests/test-sms-part-3gpp.c
    .init(source: "MM pdu1 extended chars",
          hex: "07912104442961F4040B916171957291F800001120821105050A6AC8B2BC7C9A83C220F6DB7D2ECB41EDF27C1E3E97411BDE06754FD3D1A0F9BB5D0695F1F4B29B5C2683C6E8B03C3CA697E5F34D6AE303D1D1F2F7DD0D4ABB59A0797D8C0685E7A00028EC26832A960B28EC2683BE6050780EBA97D96C17",
          type: .deliver, smsc: "+12404492164", address: "+16175927198", alphabet: .gsm7,
          text: "Here's a longer message [{with some extended characters}] thrown in, such as £ and ΩΠΨ and §¿ as well.",
          timestamp: .init(year: 11, month: 2, day: 28, hour: 11, minute: 50, second: 50, quarterHours: -20)),
    .init(source: "MM pdu2 alphanumeric sender, UCS-2",
          hex: "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
          type: .deliver, smsc: "+79037011111", address: "InternetSMS", alphabet: .ucs2, text: "тест",
          timestamp: .init(year: 11, month: 3, day: 29, hour: 19, minute: 20, second: 4, quarterHours: 16)),
    .init(source: "MM pdu3 8-bit", hex: "07912143658709F1040B918100551512F2000411101021436500" + "0AE8329BFD4697D9EC37DE",
          type: .deliver, smsc: "+12345678901", address: "+18005551212", alphabet: .data8, data: "E8329BFD4697D9EC37DE"),
    .init(source: "MM pdu3 national", hex: "07912143658709F1040B818100551512F20000111010214365000AE8329BFD4697D9EC37",
          type: .deliver, smsc: "+12345678901", address: "18005551212", alphabet: .gsm7, text: "hellohello"),
    .init(source: "MM dcs F4 8-bit", hex: "07912143658709F1040B918100551512F200F411101021436500" + "0AE8329BFD4697D9EC37DE",
          type: .deliver, smsc: "+12345678901", address: "+18005551212", alphabet: .data8, data: "E8329BFD4697D9EC37DE"),
    .init(source: "MM dcs F1 GSM 7-bit",
          hex: "07913306091093F0040485810000F111604231805180A049B7F90D9A1AA5A01668F8769BD3E4B29B9E2EB359A03FC85D06A9C3ED707A0EA2CBC3EE79BB4CA7CBCBA05643617DA7C76990FD4D979741EE77DD5E0ED741ED371D442E83E0E1F9BC0CD281E677D9B84C06C1DF7539E85C9097E520FB9B2E2F83C6EF369C5E064D8D52D0BC2E07DDEF77D7DC2C7799E5A0771D040FCB41F402BB0047BFDD6550B80ECAD966",
          type: .deliver, smsc: "+33609001390", address: "1800", alphabet: .gsm7,
          text: "Info SFR - Confidentiel, à ne jamais transmettre -\r\nVoici votre nouveau mot de passe : sw2ced pour gérer votre compte SFR sur www.sfr.fr ou par téléphone au 963"),
    .init(source: "MM udhi 16-bit ref, no fill bits",
          hex: "07911356131313F64004850120390011609232239180A006080400100201D7327BFD6EB340E2321BF46E83EA7790F59D1E97DBE1341B442F83C465763D3DA797E56537C81D0ECB41AB59CC1693C16031D96C064241E5656838AF03A96230982A269BCD462917C8FA4E8FCBED709A0D7ABBE9F6B0FB5C7683D27350984D4FABC9A0B33C4C4FCF5D20EBFB2D079DCB62793DBD06D9C36E50FB2D4E97D9A0B49B5E96BBCB",
          type: .deliver, smsc: "+31653131316", address: "1002", alphabet: .gsm7,
          text: "Welkom, bel om uw Voicemail te beluisteren naar +31612001233 (PrePay: *100*1233#). Voicemail ontvangen is altijd gratis. Voor gebruik van mobiel interne",
          concat: .init(reference: 0x0010, total: 2, sequence: 1, wideReference: true)),
    .init(source: "MM multipart 2/2",
          hex: "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10",
          type: .deliver, smsc: "+12063130026", address: "+16175046925", alphabet: .gsm7,
          text: "that the parts are related to one another. ",
          concat: .init(reference: 0x4C, total: 2, sequence: 2, wideReference: false),
          timestamp: .init(year: 12, month: 4, day: 25, hour: 19, minute: 56, second: 51, quarterHours: -16)),
    .init(source: "MM SUBMIT stored by us, UCS-2",
          hex: "002100098136397339F70008224F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60",
          type: .submit, smsc: "", address: "639337937", alphabet: .ucs2, text: "你好你好你好你好你好你好你好你好你"),
    // nRF Connect SDK tests/lib/sms/src/sms_test.c
    .init(source: "nRF port addressing",
          hex: "004408812143658700041210032143652b1b0b05040b84000000037c01010102030405060708090A0B0C0D0E0F",
          type: .deliver, smsc: "", address: "12345678", alphabet: .data8, data: "0102030405060708090A0B0C0D0E0F",
          concat: .init(reference: 124, total: 1, sequence: 1, wideReference: false),
          ports: .init(destination: 2948, source: 0, wide: true),
          timestamp: .init(year: 21, month: 1, day: 30, hour: 12, minute: 34, second: 56, quarterHours: -32)),
    .init(source: "nRF dcs 1111 8-bit", hex: "07915348748943200405912143F500F4122090028543800F0102030405060708090A0B0C0D0E0F",
          type: .deliver, smsc: "+358447983402", address: "+12345", alphabet: .data8, data: "0102030405060708090A0B0C0D0E0F"),
    .init(source: "nRF concat part 2, euro sign after UDH",
          hex: "0791534874894370440A9121436587090000122022806550801305000351020236E5986C46ABD96EB81C0C",
          type: .deliver, smsc: "+358447983407", address: "+1234567890", alphabet: .gsm7, text: "€1234567890",
          concat: .init(reference: 0x51, total: 2, sequence: 2, wideReference: false)),
    .init(source: "nRF empty text", hex: "00040A91214365870900001220900285438000",
          type: .deliver, smsc: "", address: "+1234567890", alphabet: .gsm7, text: ""),
]

func vector(_ source: String) -> DecodeVector { decodeVectors.first { $0.source == source }! }

@Suite struct SMSPDUDecodeTests {
    @Test(arguments: decodeVectors)
    func decodesPublishedVector(_ v: DecodeVector) throws {
        let m = try decodeHex(v.hex)
        #expect(m.type == v.type)
        if let smsc = v.smsc { #expect(addressString(m.smsc) == smsc) }
        #expect(addressString(m.address) == v.address)
        #expect(m.alphabet == v.alphabet)
        if let t = v.text { #expect(text(m) == t) }
        if let d = v.data { #expect(hexString(payload(m)) == d) }
        #expect(m.header.concat == v.concat)
        #expect(m.header.ports == v.ports)
        if let ts = v.timestamp { #expect(m.timestamp == ts) }
        #expect(!m.clipped)
    }

    // python-gsmmodem test_decode: status report for message reference 214.
    @Test func decodesStatusReport() throws {
        let m = try decodeHex("0006D60B911326880736F4111011719551401110117195714000")
        #expect(m.type == .statusReport)
        #expect(m.messageReference == 214)
        #expect(addressString(m.address) == "+31628870634")
        #expect(m.status == 0)
        #expect(m.timestamp == SMSTimestamp(year: 11, month: 1, day: 11, hour: 17, minute: 59, second: 15, quarterHours: 4))
    }

    // nRF test_send_len3_number10plus: +CDS without the SMSC field.
    @Test func decodesStatusReportWithoutSMSC() throws {
        let m = try decodeHex("06550A912143658709122022118314801220221183148000", smscPresent: false)
        #expect(m.type == .statusReport)
        #expect(m.messageReference == 0x55)
        #expect(addressString(m.address) == "+1234567890")
    }

    // python-gsmmodem TestSmsPduAddressFields: alphanumeric senders with extension characters.
    @Test func decodesAlphanumericWithExtensionCharacters() throws {
        let m = try decodeHex("00" + "04" + "14D0E10D6FE3DBA036A94D19" + "0000" + "11101021436500" + "00")
        #expect(m.address.kind == .alphanumeric)
        #expect(addressString(m.address) == "a[]{}€")
    }

    // Constructed per TS 23.040 §9.2.3.24: an unknown IE (0x70) and a concat IE with sequence 0 are skipped.
    @Test func skipsUnknownAndIgnorableIEs() throws {
        let udh = "0F" + "7002AABB" + "00030A0200" + "050400500051"
        let m = try decodeHex("00" + "44" + "0491" + "2143" + "0004" + "11101021436500" + "12" + udh + "CAFE")
        #expect(m.header.skipped == 2)
        let view = m.payload
        #expect(view.count == 2 && view[0] == 0xCA && view[1] == 0xFE)
        #expect(m.header.concat == nil)
        #expect(m.header.ports == SMSPorts(destination: 0x50, source: 0x51, wide: true))
        #expect(payload(m) == [0xCA, 0xFE])
    }

    // ModemManager test_pdu_insufficient_data: UDL 11 septets, 9 octets present. MM rejects; we show the
    // 10 septets that are there and flag the clip.
    @Test func clipsTextWhoseUserDataIsShort() throws {
        let m = try decodeHex("07912143658709F1040B918100551512F20000111010214365000BE8329BFD4697D9EC37")
        #expect(text(m) == "hellohello")
        #expect(m.clipped)
        #expect(m.announcedUserData == 11 && m.carriedUserData == 10)
    }

    @Test func textNeverOverrunsTheCallerBuffer() throws {
        let m = try decodeHex(vector("gsmmodem AT commands").hex)
        var small = [UInt8](repeating: 0xEE, count: 12)
        let n = small.withUnsafeMutableBytes { m.writeText(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<10])) }
        #expect(n == 10)
        #expect(String(decoding: small[0..<n], as: UTF8.self) == "It is easy")
        #expect(small[10] == 0xEE && small[11] == 0xEE)
    }

    // Each failing decode leaves the caller's previous message as it was (decode is pure and returns nothing).
    @Test(arguments: [
        // nRF test_recv_fail_number21: 22 semi-octets.
        ("0004169121436587092143658709F10000122090028543800831D98C56B3DD70", SMSPDUError.badAddress),
        // nRF test_recv_fail_len161: UDL 161 septets.
        ("00040A912143658709000012201232054480A131D98C56B3DD70", SMSPDUError.userDataTooLong),
        // nRF test_recv_invalid_udl_longer_than_ud_8bit: nRF keeps 9 of 10 octets; binary data must be whole.
        ("00040A9121436587090004122012320544800A010203040506070809", SMSPDUError.truncated),
        // python-gsmmodem: UCS-2 with UDL 160 octets, which TS 23.040 caps at 140.
        ("0041010C910661345542F60008A0050003000301306F3044", SMSPDUError.userDataTooLong),
        // python-gsmmodem test_decode_invalidPduType: TP-MTI 3.
        ("0043010C910661345542F60008A0050003000301306F3044", SMSPDUError.unsupportedMessageType),
        ("0004", SMSPDUError.truncated),
        ("", SMSPDUError.truncated),
        ("0C91", SMSPDUError.badAddress),
        // UDHL 9 but only 3 header octets present.
        ("00440491214300041110102143650004" + "09000301", SMSPDUError.badUserDataHeader),
        // IE length runs past UDHL.
        ("00440491214300041110102143650005" + "0400050102", SMSPDUError.badUserDataHeader),
        // 7-bit: UDHL 20 but UDL only 5 septets.
        ("0044049121430000111010214365000514000301", SMSPDUError.badUserDataHeader),
    ])
    func rejectsMalformed(_ hex: String, _ expected: SMSPDUError) throws {
        var m = try decodeHex(vector("gsmmodem Test2").hex)
        #expect(throws: expected) { m = try decodeHex(hex) }
        #expect(text(m) == "Test2")
        #expect(addressString(m.address) == "+27821234567")
    }

    // Every prefix and every single-octet corruption of a port-addressed concat PDU: typed error or a message, never a trap.
    @Test func survivesTruncationAndCorruption() {
        let full = hexBytes(vector("nRF port addressing").hex)
        var outcomes = 0
        for n in 0...full.count {
            _ = full.withUnsafeBytes { try? SMSPDU.decode(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            outcomes += 1
        }
        for i in 0..<full.count {
            for v: UInt8 in [0x00, 0x7F, 0x80, 0xFF] {
                var b = full
                b[i] = v
                if let m = b.withUnsafeBytes({ try? SMSPDU.decode($0) }) {
                    #expect(m.payloadCount <= SMSMessage.maxPayload)
                    _ = text(m)
                }
                outcomes += 1
            }
        }
        #expect(outcomes == full.count + 1 + full.count * 4)
        #expect(full.withUnsafeBytes { try? SMSPDU.decode(UnsafeRawBufferPointer(rebasing: $0[0..<(full.count - 1)])) } == nil)
    }
}
