import Testing
@testable import HandsetCore

@Suite struct ReplayWindowTests {
    @Test func acceptsFreshRejectsDuplicate() {
        var w = ReplayWindow<3>()
        #expect(w.check(1) == .fresh)
        w.commit(1)
        #expect(w.check(1) == .replayed)
        #expect(w.check(2) == .fresh)
    }

    @Test func zeroIsNeverValid() {
        let w = ReplayWindow<3>()
        #expect(w.check(0) == .tooOld)
    }

    @Test func windowEdge() {
        // 3 blocks: 128 usable bits.
        var w = ReplayWindow<3>()
        w.commit(1000)
        #expect(w.check(1000 - 127) == .fresh)
        #expect(w.check(1000 - 128) == .tooOld)
        w.commit(1000 - 127)
        #expect(w.check(1000 - 127) == .replayed)
    }

    @Test func bigJumpClearsOldBits() {
        var w = ReplayWindow<5>()
        for s in UInt64(1)...300 { w.commit(s) }
        w.commit(100_000)
        // Everything within the window below the new top is unseen again.
        for s in (100_000 - 255)..<100_000 { #expect(w.check(UInt64(s)) == .fresh) }
        #expect(w.check(100_000) == .replayed)
    }

    @Test func outOfOrderWithinWindow() {
        var w = ReplayWindow<17>()  // 1024 bits
        let order: [UInt64] = [5, 3, 1000, 4, 900, 1, 2]
        for s in order { #expect(w.check(s) == .fresh); w.commit(s) }
        for s in order { #expect(w.check(s) == .replayed) }
        #expect(ReplayWindow<17>.size == 1024)
    }
}
