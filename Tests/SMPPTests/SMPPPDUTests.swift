import Testing
@testable import SMPP

private func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

// Vectors: bind, submit_sm, submit_sm_resp, enquire_link and generic_nack are the octets python smpplib 2.2.4
// (PyPI) generates for the same fields (`Command.generate()`); the deliver_sm is the one in smpplib's own
// tests/test_command.py::test_parse_deliver_sm (a delivery receipt with message_payload and five TLVs).
@Suite struct SMPPPDUTests {
    static let bind = "0000001f000000090000000000000001677700736563726574000034000000"
    static let submit = "0000003b000000040000000000000002000001343030300001013135353530313030303031004000000000000004000b"
        + "0605044010401000c0ffee"
    static let submitResp = "0000001480000004000000000000000261626300"
    static let enquire = "00000010000000150000000000000007"
    static let nack = "00000010800000000000000300000009"
    static let receipt = "000000cb000000050000000000000001000101333136303030303030303000050058585820595959590004000000"
        + "000000000000000e0001010006000101001e000931643330356234630004270001020424007269643a30343839373038333634"
        + "207375623a30303120646c7672643a303031207375626d697420646174653a3138313031353139303720646f6e652064617465"
        + "3a3138313031353139303720737461743a44454c49565244206572723a30303020746578743a041f04400438043204350442"
        + "0426000101"

    static func submitMessage() -> SMPPShortMessage {
        var m = SMPPShortMessage()
        m.sourceNPI = 1; m.sourceAddr = "4000"
        m.destTON = 1; m.destNPI = 1; m.destAddr = "15550100001"
        m.esmClass = 0x40; m.dataCoding = 4
        m.shortMessage = hex("0605044010401000c0ffee")
        return m
    }

    @Test func encodesLikeSmpplib() {
        var b = SMPPBind(systemID: "gw", password: "secret")
        b.interfaceVersion = 0x34
        #expect(SMPPPDU(.bindTransceiver(b), sequence: 1).encode() == hex(Self.bind))
        #expect(SMPPPDU(.submitSM(Self.submitMessage()), sequence: 2).encode() == hex(Self.submit))
        #expect(SMPPPDU(.submitSMResp(messageID: "abc"), sequence: 2).encode() == hex(Self.submitResp))
        #expect(SMPPPDU(.enquireLink, sequence: 7).encode() == hex(Self.enquire))
        #expect(SMPPPDU(.genericNack, sequence: 9, status: SMPPStatus.invalidCommandID).encode() == hex(Self.nack))
    }

    @Test func decodesSmpplibOctets() throws {
        let bind = try SMPPPDU.decode(hex(Self.bind))
        #expect(bind.sequence == 1)
        guard case .bindTransceiver(let b) = bind.body else { Issue.record("not a bind"); return }
        #expect(b.systemID == "gw" && b.password == "secret" && b.interfaceVersion == 0x34)
        let submit = try SMPPPDU.decode(hex(Self.submit))
        #expect(submit.body == .submitSM(Self.submitMessage()))
        #expect(try SMPPPDU.decode(hex(Self.nack)) == SMPPPDU(.genericNack, sequence: 9, status: 3))
    }

    @Test func decodesReceiptWithMessagePayload() throws {
        let pdu = try SMPPPDU.decode(hex(Self.receipt))
        guard case .deliverSM(let m) = pdu.body else { Issue.record("not a deliver_sm"); return }
        #expect(m.sourceTON == 1 && m.sourceNPI == 1 && m.sourceAddr == "31600000000")
        #expect(m.destAddr == "XXX YYYY")
        #expect(m.isDeliveryReceipt)
        #expect(m.shortMessage.isEmpty)
        #expect(m.tlvs.map(\.tag) == [0x000E, 0x0006, 0x001E, 0x0427, 0x0424, 0x0426])
        #expect(m.tlvs.first { $0.tag == SMPPTLV.receiptedMessageID }?.value == Array("1d305b4c\0".utf8))
        #expect(m.userData.count == 0x72)
        #expect(Array(m.userData.prefix(14)) == Array("id:0489708364 ".utf8))
    }

    @Test func roundTripsDeliverSMAndResponses() throws {
        var m = Self.submitMessage()
        m.tlvs = [SMPPTLV(tag: SMPPTLV.messagePayload, value: [1, 2, 3])]
        for body: SMPPBody in [.deliverSM(m), .deliverSMResp(messageID: ""), .bindTransceiverResp(systemID: "smsc"),
                               .unbind, .unbindResp, .enquireLinkResp] {
            let pdu = SMPPPDU(body, sequence: 0x7FFF_FFFF)
            #expect(try SMPPPDU.decode(pdu.encode()) == pdu)
        }
    }

    @Test func errorResponseWithoutBody() throws {
        // §4.4.2: a submit_sm_resp with a non-zero status may omit message_id; likewise bind_transceiver_resp.
        let r = try SMPPPDU.decode(hex("00000010800000040000005800000003"))
        #expect(r == SMPPPDU(.submitSMResp(messageID: ""), sequence: 3, status: SMPPStatus.throttled))
        #expect(try SMPPPDU.decode(hex("0000001080000009000000 0e00000001".filter { $0 != " " })).status == 0x0E)
    }

    @Test(arguments: [
        // (octets, expected error)
        ("000000100000001500000000", SMPPError.truncated),
        ("0000000f000000150000000000000001", SMPPError.badLength(15)),
        ("00010001000000150000000000000001", SMPPError.badLength(0x10001)),
        ("00000014000000150000000000000001", SMPPError.badLength(20)),                      // says 20, has 16
        ("00000010000000990000000000000001", SMPPError.unknownCommand(0x99)),
        ("00000012000000090000000000000001 6777".filter { $0 != " " }, SMPPError.unterminatedCString("system_id")),
        ("00000014000000150000000000000001 00000000".filter { $0 != " " }, SMPPError.trailingOctets(4)),
        ("00000014800000040000000000000001 61626364".filter { $0 != " " }, SMPPError.unterminatedCString("message_id")),
    ])
    func malformedIsTyped(_ octets: String, _ expected: SMPPError) {
        #expect(throws: expected) { try SMPPPDU.decode(hex(octets)) }
    }

    @Test func shortMessageBounds() {
        // sm_length 255 is over the 254 limit; sm_length 5 with 3 octets left is truncated; a TLV that overruns.
        var base = SMPPPDU(.submitSM(SMPPShortMessage()), sequence: 1).encode()
        base.removeLast() // sm_length 0
        func patched(_ b: [UInt8]) -> [UInt8] {
            var b = b
            b[2] = UInt8(b.count >> 8); b[3] = UInt8(b.count & 0xFF)
            return b
        }
        func withTail(_ tail: [UInt8]) -> [UInt8] { patched(base + tail) }
        #expect(throws: SMPPError.fieldTooLong("short_message")) { try SMPPPDU.decode(withTail([255] + [UInt8](repeating: 0, count: 255))) }
        #expect(throws: SMPPError.truncated) { try SMPPPDU.decode(withTail([5, 1, 2, 3])) }
        #expect(throws: SMPPError.badTLV(0x0424)) { try SMPPPDU.decode(withTail([0, 0x04, 0x24, 0x00, 0x09, 1])) }
        #expect(throws: SMPPError.fieldTooLong("service_type")) {
            try SMPPPDU.decode(patched(Array(base.prefix(16)) + Array("TOOLONG\0".utf8) + [UInt8](repeating: 0, count: 30)))
        }
    }

    @Test func everyPrefixOfAValidPDUIsHandled() {
        // Cut the receipt at every length, with command_length patched to match: none traps, and only the six cuts
        // that end on a TLV boundary (after the mandatory fields, then after each of the first five TLVs) decode.
        let whole = hex(Self.receipt)
        var decoded: [Int] = []
        for n in 0..<whole.count {
            var cut = Array(whole.prefix(n))
            if n >= 4 { cut[0] = 0; cut[1] = 0; cut[2] = UInt8(n >> 8); cut[3] = UInt8(n & 0xFF) }
            if (try? SMPPPDU.decode(cut)) != nil { decoded.append(n) }
        }
        #expect(decoded == [52, 57, 62, 75, 80, 198])
    }
}
