// Storage tags: every part the reassembler takes comes back exactly once, so the caller can delete it from
// the module (AT+CMGD) whatever became of its message.
import Testing
@testable import BearerDriver

extension Reassembler {
    /// Feeds one part with a tag; returns the result and the tags released by this call.
    mutating func feed(_ m: SMSMessage, now: UInt64, tag: Int) throws -> (SMSReassemblyResult, [Int]) {
        var out = [UInt8](repeating: 0, count: 600)
        var released: [Int] = []
        let r = out.withUnsafeMutableBytes { buf in
            Result { () throws(SMSReassemblyError) in try accept(m, now: now, tag: tag, into: buf) { released.append($0) } }
        }
        return (try r.get(), released)
    }
}

@Suite struct SMSReassemblerTagTests {
    let d: [UInt8] = Array(0..<40)

    @Test func completionReleasesEveryPartOnce() throws {
        var r = Reassembler(timeout: 60)
        #expect(try r.feed(deliverPart(ref: 1, total: 3, seq: 2, data: d), now: 0, tag: 5).1 == [])
        #expect(try r.feed(deliverPart(ref: 1, total: 3, seq: 1, data: d), now: 0, tag: 2).1 == [])
        let (res, released) = try r.feed(deliverPart(ref: 1, total: 3, seq: 3, data: d), now: 0, tag: 9)
        guard case .complete = res else { Issue.record("not complete"); return }
        #expect(released.sorted() == [2, 5, 9])
        #expect(r.pending == 0)
    }

    @Test func singlePartIsReleasedAtOnce() throws {
        var r = Reassembler(timeout: 60)
        #expect(try r.feed(deliverPart(ref: 0, total: 0, seq: 0, data: d), now: 0, tag: 3).1 == [3])
    }

    @Test func timedOutMessageReleasesItsParts() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 3, seq: 1, data: d), now: 0, tag: 4)
        _ = try r.feed(deliverPart(ref: 1, total: 3, seq: 2, data: d), now: 10, tag: 7)
        var released: [Int] = []
        #expect(r.expire(now: 59) { released.append($0) } == 0)
        #expect(released == [])
        #expect(r.expire(now: 60) { released.append($0) } == 1)
        #expect(released.sorted() == [4, 7])
        #expect(r.counters.timedOut == 1)
        // Expired inside accept too: the next part of another message releases the old ones.
        _ = try r.feed(deliverPart(ref: 2, total: 2, seq: 1, data: d), now: 100, tag: 1)
        #expect(try r.feed(deliverPart(ref: 3, total: 2, seq: 1, data: d), now: 200, tag: 2).1 == [1])
    }

    @Test func evictedMessageReleasesItsParts() throws {
        var r = Reassembler(timeout: 600)  // two slots
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: d), now: 0, tag: 11)
        _ = try r.feed(deliverPart(ref: 2, total: 2, seq: 1, data: d), now: 1, tag: 12)
        let (res, released) = try r.feed(deliverPart(ref: 3, total: 2, seq: 1, data: d), now: 2, tag: 13)
        #expect(isPending(res))
        #expect(released == [11])  // the oldest
        #expect(r.counters.evicted == 1)
    }

    @Test func duplicateCopyIsReleasedButTheHeldPartIsNot() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: d), now: 0, tag: 4)
        // The same stored SMS listed again (catch-up) must stay: its message still needs it.
        let (again, none) = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: d), now: 1, tag: 4)
        #expect(isDuplicate(again) && none == [])
        let (copy, released) = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: d), now: 1, tag: 8)
        #expect(isDuplicate(copy) && released == [8])
        #expect(try r.feed(deliverPart(ref: 1, total: 2, seq: 2, data: d), now: 2, tag: 6).1.sorted() == [4, 6])
    }

    /// Same reference from two originators: two messages, and completing one releases only its own parts.
    @Test func partsAreKeyedByOriginatorAndReference() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(from: "+111", ref: 9, total: 2, seq: 1, data: d), now: 0, tag: 1)
        _ = try r.feed(deliverPart(from: "+222", ref: 9, total: 2, seq: 1, data: d), now: 0, tag: 2)
        let (res, released) = try r.feed(deliverPart(from: "+222", ref: 9, total: 2, seq: 2, data: d), now: 1, tag: 3)
        guard case .complete = res else { Issue.record("not complete"); return }
        #expect(released.sorted() == [2, 3])
        #expect(r.pending == 1)
    }

    @Test func untaggedPartsReleaseNothing() throws {
        var r = Reassembler(timeout: 60)
        _ = try r.feed(deliverPart(ref: 1, total: 2, seq: 1, data: d), now: 0, tag: -1)
        #expect(try r.feed(deliverPart(ref: 1, total: 2, seq: 2, data: d), now: 1, tag: -1).1 == [])
    }

    @Test func rejectedPartIsNotTaken() throws {
        var r = SMSReassembler<2, 2>(timeout: 60)
        var released: [Int] = []
        var out = [UInt8](repeating: 0, count: 600)
        let m = try deliverPart(ref: 1, total: 3, seq: 1, data: d)
        let threw = out.withUnsafeMutableBytes { buf in
            do throws(SMSReassemblyError) { _ = try r.accept(m, now: 0, tag: 5, into: buf) { released.append($0) }; return false }
            catch { return error == .tooManyParts }
        }
        #expect(threw && released == [] && r.pending == 0)
    }
}
