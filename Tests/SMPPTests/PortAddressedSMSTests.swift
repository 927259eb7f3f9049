import Testing
@testable import SMPP

// UDH layouts from 3GPP TS 23.040 §9.2.3.24.4 (IEI 0x05, 16-bit ports) and §9.2.3.24.8 (IEI 0x08, 16-bit ref).
@Suite struct PortAddressedSMSTests {
    @Test func singlePartCarriesPortsOnly() throws {
        let parts = try PortAddressedSMS.parts([0xC0, 0xFF, 0xEE], portDst: 16400, portSrc: 16400, reference: 7)
        #expect(parts == [[0x06, 0x05, 0x04, 0x40, 0x10, 0x40, 0x10, 0xC0, 0xFF, 0xEE]])
    }

    @Test func longPayloadIsConcatenatedWithIEI08() throws {
        let payload = (0..<300).map { UInt8($0 & 0xFF) }
        let parts = try PortAddressedSMS.parts(payload, portDst: 16400, portSrc: 9200, reference: 0x1234)
        #expect(parts.count == 3)
        #expect(parts.allSatisfy { $0.count <= 140 })
        #expect(Array(parts[1].prefix(13)) == [0x0C, 0x05, 0x04, 0x40, 0x10, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02])
        var joined: [UInt8] = []
        for (k, p) in parts.enumerated() {
            let (h, body) = try PortAddressedSMS.parse(p, udhi: true)
            #expect(h.portDst == 16400 && h.portSrc == 9200)
            #expect(h.concatRef == 0x1234 && h.concatTotal == 3 && h.concatSeq == k + 1)
            joined += body
        }
        #expect(joined == payload)
    }

    @Test func exactlyOneSMSStaysSingle() throws {
        #expect(try PortAddressedSMS.parts([UInt8](repeating: 1, count: 133), portDst: 1, portSrc: 1, reference: 0).count == 1)
        #expect(try PortAddressedSMS.parts([UInt8](repeating: 1, count: 134), portDst: 1, portSrc: 1, reference: 0).count == 2)
    }

    @Test func parsesEightBitConcatAndPortsTogether() throws {
        // The module's own concatenation (IEI 0x00, 8-bit reference; TS 23.040 §9.2.3.24.1) next to 16-bit ports,
        // and an unknown IEI (0x24, national language) that is skipped.
        let ud: [UInt8] = [0x0D, 0x00, 0x03, 0xCC, 0x02, 0x01, 0x05, 0x04, 0x40, 0x10, 0x23, 0xF0, 0x24, 0x00, 0x99]
        let (h, body) = try PortAddressedSMS.parse(ud, udhi: true)
        #expect(h.concatRef == 0xCC && h.concatTotal == 2 && h.concatSeq == 1)
        #expect(h.portDst == 16400 && h.portSrc == 9200)
        #expect(body == [0x99])
        #expect(try PortAddressedSMS.parse([0x41, 0x42], udhi: false).1 == [0x41, 0x42])
    }

    @Test func badHeadersAreTyped() {
        #expect(throws: UDHError.missingHeader) { try PortAddressedSMS.parse([], udhi: true) }
        #expect(throws: UDHError.headerOverrun) { try PortAddressedSMS.parse([0x06, 0x05, 0x04], udhi: true) }
        #expect(throws: UDHError.headerOverrun) { try PortAddressedSMS.parse([0x03, 0x05, 0x04, 0x40, 0x10], udhi: true) }
        #expect(throws: UDHError.tooManyParts(256)) {
            try PortAddressedSMS.parts([UInt8](repeating: 0, count: 127 * 256), portDst: 1, portSrc: 1, reference: 0)
        }
    }
}
