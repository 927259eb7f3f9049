import Testing
@testable import BearerDriver

/// An SMS-DELIVER part built per TS 23.040 §9.2.2.1 with 8-bit data, a 16-bit port IE and an 8-bit concat IE.
func deliverPart(from: String = "+4917012345", ref: UInt8, total: UInt8, seq: UInt8, port: UInt16 = 9200,
                 data: [UInt8]) throws -> SMSMessage {
    var udh: [UInt8] = [0x05, 0x04, UInt8(port >> 8), UInt8(port & 0xFF), 0x00, 0x00]
    if total > 0 { udh += [0x00, 0x03, ref, total, seq] }
    let digits = Array(from.utf8.dropFirst())
    var oa: [UInt8] = [UInt8(digits.count), 0x91]
    var k = 0
    while k < digits.count {
        let lo = digits[k] - 0x30
        let hi = k + 1 < digits.count ? digits[k + 1] - 0x30 : 0x0F
        oa.append(hi << 4 | lo)
        k += 2
    }
    var pdu: [UInt8] = [0x00, 0x44] + oa + [0x00, 0x04] + [0x52, 0x11, 0x12, 0x01, 0x00, 0x00, 0x00]
    pdu += [UInt8(1 + udh.count + data.count), UInt8(udh.count)] + udh + data
    return try decodeHex(hexString(pdu))
}

typealias Reassembler = SMSReassembler<2, 4>

extension Reassembler {
    mutating func feed(_ m: SMSMessage, now: UInt64, capacity: Int = 600) throws -> (SMSReassemblyResult, [UInt8]) {
        var out = [UInt8](repeating: 0, count: capacity)
        let r = out.withUnsafeMutableBytes { buf in
            Result { () throws(SMSReassemblyError) in try accept(m, now: now, into: buf) }
        }
        let result = try r.get()
        if case .complete(let done) = result { return (result, Array(out[0..<done.count])) }
        return (result, [])
    }
}

func isPending(_ r: SMSReassemblyResult) -> Bool { if case .pending = r { true } else { false } }
func isDuplicate(_ r: SMSReassemblyResult) -> Bool { if case .duplicate = r { true } else { false } }

@Suite struct SMSReassemblerTests {
    let a: [UInt8] = Array(0..<100)
    let b: [UInt8] = Array(100..<200)
    let c: [UInt8] = Array(200..<230)

    @Test func joinsPartsInOrder() throws {
        var r = Reassembler(timeout: 60)
        #expect(isPending(try r.feed(deliverPart(ref: 7, total: 3, seq: 1, data: a), now: 0).0))
        #expect(isPending(try r.feed(deliverPart(ref: 7, total: 3, seq: 2, data: b), now: 1).0))
        let (res, out) = try r.feed(deliverPart(ref: 7, total: 3, seq: 3, data: c), now: 2)
        guard case .complete(let m) = res else { Issue.record("not complete"); return }
        #expect(out == a + b + c)
        #expect(m.reference == 7 && m.parts == 3)
        #expect(m.ports?.destination == 9200)
        #expect(addressString(m.originator) == "+4917012345")
        #expect(r.pending == 0)
        #expect(r.counters.completed == 1)
    }

    @Test func toleratesReorderedParts() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 7, total: 3, seq: 3, data: c), now: 0)
        _ = try r.feed(deliverPart(ref: 7, total: 3, seq: 1, data: a), now: 0)
        let (res, out) = try r.feed(deliverPart(ref: 7, total: 3, seq: 2, data: b), now: 0)
        guard case .complete = res else { Issue.record("not complete"); return }
        #expect(out == a + b + c)
    }

    @Test func duplicateChangesNothingButTheCounter() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 7, total: 2, seq: 1, data: a), now: 0)
        // Same part again, with other bytes: the first copy is kept.
        #expect(isDuplicate(try r.feed(deliverPart(ref: 7, total: 2, seq: 1, data: c), now: 1).0))
        #expect(r.counters.duplicates == 1)
        #expect(r.pending == 1)
        let (_, out) = try r.feed(deliverPart(ref: 7, total: 2, seq: 2, data: b), now: 2)
        #expect(out == a + b)
    }

    @Test func timesOutIncompleteMessages() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 7, total: 2, seq: 1, data: a), now: 100)
        #expect(r.expire(now: 159) == 0)
        #expect(r.pending == 1)
        #expect(r.expire(now: 160) == 1)
        #expect(r.pending == 0)
        #expect(r.counters.timedOut == 1)
        // The late second half starts a new message instead of completing the old one.
        #expect(isPending(try r.feed(deliverPart(ref: 7, total: 2, seq: 2, data: b), now: 161).0))
    }

    @Test func acceptExpiresBeforeMatching() throws {
        var r = Reassembler(timeout: 10)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: a), now: 0)
        #expect(isPending(try r.feed(deliverPart(ref: 1, total: 2, seq: 2, data: b), now: 10).0))
        #expect(r.counters.timedOut == 1)
    }

    @Test func evictsTheOldestWhenFull() throws {
        var r = Reassembler(timeout: 600)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: a), now: 5)
        _ = try r.feed(deliverPart(ref: 2, total: 2, seq: 1, data: a), now: 6)
        _ = try r.feed(deliverPart(ref: 3, total: 2, seq: 1, data: a), now: 7)
        #expect(r.counters.evicted == 1)
        #expect(r.pending == 2)
        // Ref 1 was evicted: its second part starts over (and evicts ref 2, now the oldest).
        #expect(isPending(try r.feed(deliverPart(ref: 1, total: 2, seq: 2, data: b), now: 8).0))
        #expect(r.counters.evicted == 2)
        let (res, out) = try r.feed(deliverPart(ref: 3, total: 2, seq: 2, data: b), now: 9)
        guard case .complete = res else { Issue.record("ref 3 lost"); return }
        #expect(out == a + b)
    }

    @Test func keysOnOriginatorAndPort() throws {
        var r = SMSReassembler<4, 4>(timeout: 60)
        var out = [UInt8](repeating: 0, count: 400)
        func feed(_ m: SMSMessage) throws -> SMSReassemblyResult {
            try out.withUnsafeMutableBytes { try r.accept(m, now: 0, into: $0) }
        }
        _ = try feed(deliverPart(from: "+111", ref: 9, total: 2, seq: 1, data: a))
        _ = try feed(deliverPart(from: "+222", ref: 9, total: 2, seq: 1, data: b))
        _ = try feed(deliverPart(from: "+111", ref: 9, total: 2, seq: 1, port: 9201, data: c))
        #expect(r.pending == 3)
        guard case .complete(let m) = try feed(deliverPart(from: "+222", ref: 9, total: 2, seq: 2, data: c)) else {
            Issue.record("not complete"); return
        }
        #expect(addressString(m.originator) == "+222")
        #expect(Array(out[0..<m.count]) == b + c)
        #expect(r.pending == 2)
    }

    @Test func deliversSinglePartMessagesWithoutTakingASlot() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: a), now: 0)
        _ = try r.feed(deliverPart(ref: 2, total: 2, seq: 1, data: a), now: 0)
        let (res, out) = try r.feed(deliverPart(ref: 0, total: 0, seq: 0, data: c), now: 0)
        guard case .complete(let m) = res else { Issue.record("not complete"); return }
        #expect(out == c)
        #expect(m.reference == nil && m.parts == 1)
        // nRF sms_test.c test_recv_port_addr carries a concat IE saying part 1 of 1.
        let (res1, out1) = try r.feed(deliverPart(ref: 124, total: 1, seq: 1, data: b), now: 0)
        guard case .complete(let m1) = res1 else { Issue.record("not complete"); return }
        #expect(out1 == b)
        #expect(m1.reference == 124)
        #expect(r.pending == 2)
        #expect(r.counters.evicted == 0)
    }

    // ModemManager test-sms-part-3gpp.c test_pdu_multipart: two GSM 7-bit parts, fed in reverse order.
    @Test func joinsPublishedTextPartsAndRendersThem() throws {
        let part1 = "07912160130320F5440B916171056429F5000021405291650569A00500034C0201A9E8F41C949E83C2207B599E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434081E96D341E3303C2C4EB3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97E7F3F0B9CC02B9DF7450780EA2DFDF2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB0C9297E1F2F2BCECA6CF41"
        var r = Reassembler(timeout: 60)
        #expect(isPending(try r.feed(decodeHex(vector("MM multipart 2/2").hex), now: 0).0))
        let (res, septets) = try r.feed(decodeHex(part1), now: 1)
        guard case .complete(let m) = res else { Issue.record("not complete"); return }
        #expect(m.alphabet == .gsm7 && m.reference == 0x4C && m.parts == 2)
        var utf8 = [UInt8](repeating: 0, count: 1000)
        let n = septets.withUnsafeBytes { src in
            utf8.withUnsafeMutableBytes { SMSText.writeUTF8(src, alphabet: m.alphabet, into: $0) }
        }
        #expect(String(decoding: utf8[0..<n], as: UTF8.self) ==
            "This is a very long test designed to exercise multi part capability. It should show up as one message, "
            + "not as two, as the underlying encoding represents that the parts are related to one another. ")
    }

    @Test func rejectsMoreThanMaxPartsAndKeepsState() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: a), now: 0)
        let before = r.counters
        #expect(throws: SMSReassemblyError.tooManyParts) {
            _ = try r.feed(deliverPart(ref: 2, total: 5, seq: 1, data: a), now: 0)
        }
        #expect(r.pending == 1)
        #expect(r.counters.rejected == before.rejected + 1)
        #expect(r.counters.stored == before.stored)
    }

    @Test func shortBufferLeavesThePartUnstored() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: a), now: 0)
        let last = try deliverPart(ref: 1, total: 2, seq: 2, data: b)
        #expect(throws: SMSReassemblyError.bufferTooSmall) { _ = try r.feed(last, now: 0, capacity: 199) }
        #expect(r.pending == 1)
        let (res, out) = try r.feed(last, now: 0, capacity: 200)
        guard case .complete = res else { Issue.record("not complete"); return }
        #expect(out == a + b)
    }

    // python-gsmmodem test_decode: an SMS-SUBMIT is not something the handset reassembles.
    @Test func rejectsSubmit() throws {
        var r = Reassembler(timeout: 60)
        let submit = try decodeHex("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421")
        #expect(throws: SMSReassemblyError.notADeliver) { _ = try r.feed(submit, now: 0) }
        #expect(r.pending == 0)
        #expect(r.counters.completed == 0)
    }
}
