import Testing
@testable import ModemSim

// Vectors: the SMS-DELIVER and SMS-SUBMIT "hellohello" examples of the dreamfabric.com SMS PDU tutorial
// (L. Rasmussen, "SMS and the PDU format"), which follow 3GPP TS 23.040 §9.2.2.
@Suite struct SimPDUTests {
    @Test func decodesTutorialSubmit() throws {
        let pdu = try #require(Hex.decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37"))
        let s = try SimPDU.decodeSubmit(pdu)
        #expect(s.destination == "+46708251358")
        #expect(s.body == .text("hellohello"))
        #expect(s.dcs == 0)
    }

    @Test func decodesTutorialDeliver() throws {
        let pdu = try #require(Hex.decode("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"))
        let d = try SimPDU.decodeDeliver(pdu)
        #expect(d.from == "27838890001")
        #expect(d.body == .text("hellohello"))
    }

    @Test func rejectsDeliverAsSubmitAndTruncation() throws {
        let deliver = try #require(Hex.decode("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"))
        #expect(throws: PDUError.self) { try SimPDU.decodeSubmit(deliver) }
        let submit = try #require(Hex.decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37"))
        #expect(throws: PDUError.self) { try SimPDU.decodeSubmit(Array(submit.prefix(20))) }
        #expect(submit.count == 24) // the input array itself is untouched
    }

    @Test func packsLikeTheTutorial() {
        let septets = SimPDU.encodeGSM7("hellohello")!
        #expect(Hex.encode(SimPDU.pack7(septets, skipSeptets: 0)) == "E8329BFD4697D9EC37")
    }

    @Test func longTextSplitsInto153SeptetParts() throws {
        let text = String(repeating: "0123456789", count: 40) // 400 septets → 153 + 153 + 94
        let parts = SimPDU.deliverParts(from: "+15550123", smsc: "+15550109999", body: .text(text),
                                        portDst: nil, portSrc: nil, reference: 7)
        #expect(parts.count == 3)
        var joined = ""
        for (i, p) in parts.enumerated() {
            let d = try SimPDU.decodeDeliver(p.pdu)
            #expect(d.header.concatRef == 7 && d.header.concatTotal == 3 && d.header.concatSeq == i + 1)
            if case .text(let t) = d.body { joined += t }
            #expect(p.tpduLength <= 140 + 13 + 12)
        }
        #expect(joined == text)
    }

    @Test func portAddressedDataAndUCS2() throws {
        let data = (0..<200).map { UInt8($0 & 0xFF) }
        let parts = SimPDU.deliverParts(from: "+15550123", smsc: "", body: .data(data), portDst: 2948, portSrc: 9200,
                                        reference: 1)
        #expect(parts.count == 2)
        let d0 = try SimPDU.decodeDeliver(parts[0].pdu)
        #expect(d0.header.portDst == 2948 && d0.header.portSrc == 9200)
        let d1 = try SimPDU.decodeDeliver(parts[1].pdu)
        guard case .data(let a) = d0.body, case .data(let b) = d1.body else { Issue.record("not data"); return }
        #expect(a + b == data)
        let u = SimPDU.deliverParts(from: "+1", smsc: "", body: .text("Привет"), portDst: nil, portSrc: nil, reference: 0)
        #expect(try SimPDU.decodeDeliver(u[0].pdu).body == .text("Привет"))
    }
}
