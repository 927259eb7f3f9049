import BearerDriver
import Testing
@testable import ModemSim

// The simulator's PDU seam against BearerDriver's codec: the two were written apart and meet only on the wire,
// so each decodes what the other encodes (TS 23.040 §9.2.3.24.1 concatenation, §9.2.3.24.4 16-bit ports).
@Suite struct SimPDUCrossCheckTests {
    @Test func driverDecodesSimulatorDeliverParts() throws {
        let data = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let parts = SimPDU.deliverParts(from: "+15550123", smsc: "+15550109999", body: .data(data),
                                        portDst: 2948, portSrc: 9200, reference: 42)
        #expect(parts.count == 2)
        var joined: [UInt8] = []
        for (i, part) in parts.enumerated() {
            let m = try part.pdu.withUnsafeBytes { raw in try SMSPDU.decode(raw) }
            #expect(m.type == .deliver)
            #expect(m.header.ports == SMSPorts(destination: 2948, source: 9200, wide: true))
            #expect(m.header.concat == SMSConcat(reference: 42, total: 2, sequence: UInt8(i + 1), wideReference: false))
            var buf = [UInt8](repeating: 0, count: 160)
            let n = try buf.withUnsafeMutableBytes { out in try m.copyPayload(into: out) }
            joined += buf[0..<n]
        }
        #expect(joined == data)
    }

    @Test func driverReadsSimulatorText() throws {
        let part = try #require(SimPDU.deliverParts(from: "+15550123", smsc: "", body: .text("Hi {handset} €5"),
                                                    portDst: nil, portSrc: nil, reference: 0).first)
        let m = try part.pdu.withUnsafeBytes { raw in try SMSPDU.decode(raw) }
        var out = [UInt8](repeating: 0, count: 480)
        let n = out.withUnsafeMutableBytes { m.writeText(into: $0) }
        #expect(String(decoding: out[0..<n], as: UTF8.self) == "Hi {handset} €5")
    }

    @Test func simulatorDecodesDriverSubmitParts() throws {
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        var options = SMSSubmitOptions()
        options.destinationPort = 9200
        options.sourcePort = 2948
        options.reference = 0x1234
        let number = Array("+15550123456".utf8)
        let to = try number.withUnsafeBytes { raw in try SMSAddress(number: raw) }
        let count = try #require(SMSPDU.submitPartCount(dataCount: data.count, options: options))
        var joined: [UInt8] = []
        for i in 0..<count {
            var out = [UInt8](repeating: 0, count: 200)
            let r = try data.withUnsafeBytes { d in
                try out.withUnsafeMutableBytes { o in
                    try SMSPDU.encodeSubmit(to: to, data: d, part: i, options: options, into: o)
                }
            }
            #expect(r.tpduLength == r.octets - 1)
            let s = try SimPDU.decodeSubmit(Array(out[0..<r.octets]))
            #expect(s.destination == "+15550123456")
            #expect(s.header.concatRef == 0x1234 && s.header.concat16Bit && s.header.concatSeq == i + 1)
            #expect(s.header.portDst == 9200 && s.header.portSrc == 2948)
            if case .data(let d) = s.body { joined += d }
        }
        #expect(joined == data)
    }
}
