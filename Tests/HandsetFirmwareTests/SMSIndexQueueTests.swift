import Testing
@testable import handset_fw

@Suite struct SMSIndexQueueTests {
    @Test func addsOnceRemovesAndCountsOverflow() {
        var q = SMSIndexQueue()
        let first = q.add(3), again = q.add(3)
        #expect(first && again && q.count == 1)
        let none = q.add(-1)  // "never stored" is not queued
        #expect(none && q.count == 1)
        var accepted = 0
        for i in 10..<(10 + SMSIndexQueue.capacity - 1) where q.add(i) { accepted += 1 }
        #expect(accepted == SMSIndexQueue.capacity - 1 && q.count == SMSIndexQueue.capacity)
        let overflow = q.add(99)
        #expect(!overflow && q.overflows == 1 && !q.contains(99))
        q.remove(3)
        #expect(!q.contains(3) && q.count == SMSIndexQueue.capacity - 1)
        #expect(q.contains(10) && q.contains(10 + SMSIndexQueue.capacity - 2))
        let room = q.add(99)
        #expect(room && q.contains(99))
    }
}
