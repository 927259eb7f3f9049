import GatewayDaemon
import SMPP
import Testing

@Suite struct UplinkReassemblyTests {
    static func part(_ ref: Int, _ total: Int, _ seq: Int) -> UDHFields {
        var u = UDHFields()
        u.portDst = 16400; u.concatRef = ref; u.concatTotal = total; u.concatSeq = seq
        return u
    }

    @Test func partsInAnyOrderMakeTheMessageWithEveryPartsToken() {
        var r = UplinkReassembly<Int>(limit: 4, timeout: 30)
        #expect(r.add(Self.part(9, 3, 3), payload: [5, 6], from: "+1", token: 3, now: 0).dropped.isEmpty)
        _ = r.add(Self.part(9, 3, 1), payload: [1, 2], from: "+1", token: 1, now: 0)
        // The same reference from another handset is another message.
        _ = r.add(Self.part(9, 3, 2), payload: [0xEE], from: "+2", token: 99, now: 0)
        guard case .complete(let m, let tokens) = r.add(Self.part(9, 3, 2), payload: [3, 4], from: "+1", token: 2, now: 1).outcome
        else { Issue.record("not complete"); return }
        #expect(m == [1, 2, 3, 4, 5, 6])
        #expect(tokens.sorted() == [1, 2, 3])
        #expect(r.incomplete == 1)
    }

    @Test func aStaleMessageIsEvictedAfterTheTimeout() {
        var r = UplinkReassembly<Int>(limit: 4, timeout: 30)
        _ = r.add(Self.part(1, 2, 1), payload: [1], from: "+1", token: 1, now: 0)
        #expect(r.evictExpired(now: 29).isEmpty)
        #expect(r.evictExpired(now: 30) == [1])
        #expect(r.incomplete == 0 && r.evicted == 1)
        // Its second part alone is now an incomplete message of its own, not a completion.
        guard case .stored = r.add(Self.part(1, 2, 2), payload: [2], from: "+1", token: 2, now: 31).outcome else {
            Issue.record("completed from an evicted part"); return
        }
    }

    @Test func theBoundEvictsTheOldest() {
        var r = UplinkReassembly<Int>(limit: 2, timeout: 30)
        _ = r.add(Self.part(1, 2, 1), payload: [1], from: "+1", token: 1, now: 0)
        _ = r.add(Self.part(2, 2, 1), payload: [1], from: "+1", token: 2, now: 1)
        let (_, dropped) = r.add(Self.part(3, 2, 1), payload: [1], from: "+1", token: 3, now: 2)
        #expect(dropped == [1])
        #expect(r.incomplete == 2)
    }

    @Test func aPartOutsideItsTotalIsRefusedAndStoresNothing() {
        var r = UplinkReassembly<Int>(limit: 2, timeout: 30)
        guard case .invalid(7) = r.add(Self.part(1, 2, 3), payload: [1], from: "+1", token: 7, now: 0).outcome else {
            Issue.record("accepted part 3 of 2"); return
        }
        #expect(r.incomplete == 0)
    }
}
