/// Fixed ring of URC slots carved from one buffer allocated at init. A slot holds the URC line and,
/// for two-line or raw-data URCs, its body. Nothing is dropped silently: when the ring is full the
/// newest URC is counted in `overflows` so the owner can resynchronise (list SMS, poll sockets).
struct ATURCQueue {
    /// Where a slot stands: free, holding a URC whose body is still coming, ready to be taken, or taken (its
    /// view valid until the next queue call, then reclaimed). Byte constants rather than an enum type, so code
    /// written against the plain bytes still builds.
    enum SlotState {
        static let free: UInt8 = 0, filling: UInt8 = 1, ready: UInt8 = 2, taken: UInt8 = 3
    }

    let slots: Int
    let slotCapacity: Int
    private let storage: UnsafeMutableRawBufferPointer
    private var headLength: UnsafeMutableBufferPointer<Int>
    private var bodyLength: UnsafeMutableBufferPointer<Int>
    private var state: UnsafeMutableBufferPointer<UInt8>  // a SlotState
    private var first = 0
    private(set) var count = 0
    private(set) var overflows = 0
    private(set) var truncations = 0

    init(slots: Int, slotCapacity: Int) {
        self.slots = slots
        self.slotCapacity = slotCapacity
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: slots * slotCapacity, alignment: 8)
        headLength = UnsafeMutableBufferPointer<Int>.allocate(capacity: slots)
        bodyLength = UnsafeMutableBufferPointer<Int>.allocate(capacity: slots)
        state = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: slots)
        headLength.initialize(repeating: 0)
        bodyLength.initialize(repeating: 0)
        state.initialize(repeating: SlotState.free)
    }

    func deallocate() {
        storage.deallocate()
        headLength.deallocate()
        bodyLength.deallocate()
        state.deallocate()
    }

    private func slotBytes(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[(i * slotCapacity)..<((i + 1) * slotCapacity)])
    }

    /// Starts a URC with `line`; returns its slot, or nil (counted) when the ring is full.
    mutating func push(_ line: UnsafeRawBufferPointer, complete: Bool) -> Int? {
        if count == slots {
            overflows += 1
            return nil
        }
        let i = (first + count) % slots
        count += 1
        let dst = slotBytes(i)
        let n = min(line.count, slotCapacity)
        if n < line.count { truncations += 1 }
        if n > 0 { dst.baseAddress!.copyMemory(from: line.baseAddress!, byteCount: n) }
        headLength[i] = n
        bodyLength[i] = 0
        state[i] = complete ? SlotState.ready : SlotState.filling
        return i
    }

    /// Appends body bytes to a filling slot; bytes past the slot's capacity are counted, not stored.
    mutating func appendBody(_ slot: Int, _ bytes: UnsafeRawBufferPointer) {
        let used = headLength[slot] + bodyLength[slot]
        let room = slotCapacity - used
        let n = min(room, bytes.count)
        if n < bytes.count { truncations += 1 }
        if n > 0 {
            (slotBytes(slot).baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: n)
            bodyLength[slot] += n
        }
    }

    mutating func appendBody(_ slot: Int, byte: UInt8) {
        let used = headLength[slot] + bodyLength[slot]
        if used >= slotCapacity { truncations += 1; return }
        slotBytes(slot)[used] = byte
        bodyLength[slot] += 1
    }

    mutating func finish(_ slot: Int) { if state[slot] == SlotState.filling { state[slot] = SlotState.ready } }

    func line(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(slotBytes(slot)).prefix(headLength[slot])
    }

    func body(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(slotBytes(slot))[headLength[slot]..<(headLength[slot] + bodyLength[slot])])
    }

    /// Frees taken slots at the head so their memory can be reused.
    private mutating func reclaim() {
        while count > 0 && state[first] == SlotState.taken {
            state[first] = SlotState.free
            first = (first + 1) % slots
            count -= 1
        }
    }

    /// The oldest complete URC, marked taken. Its view stays valid until the next queue call.
    mutating func pop() -> Int? {
        reclaim()
        var k = 0
        while k < count {
            let i = (first + k) % slots
            if state[i] == SlotState.ready {
                state[i] = SlotState.taken
                return i
            }
            if state[i] == SlotState.filling { return nil }  // keep order: an unfinished URC blocks later ones
            k += 1
        }
        return nil
    }

    /// The oldest complete URC starting with `prefix`, taken out of order; others stay queued.
    mutating func take(prefix: StaticString) -> Int? {
        reclaim()
        for k in 0..<count {
            let i = (first + k) % slots
            if state[i] == SlotState.ready && line(i).hasPrefix(prefix) {
                state[i] = SlotState.taken
                return i
            }
        }
        return nil
    }

    /// The oldest complete URC that `rule` matches, taken out of order; others stay queued.
    mutating func take(matching rule: ATLineRule) -> Int? {
        reclaim()
        for k in 0..<count {
            let i = (first + k) % slots
            if state[i] == SlotState.ready && rule.matches(line(i)) {
                state[i] = SlotState.taken
                return i
            }
        }
        return nil
    }

    /// Pending complete URCs (not yet taken).
    var pending: Int {
        var n = 0
        for k in 0..<count where state[(first + k) % slots] == SlotState.ready { n += 1 }
        return n
    }

    mutating func removeAll() {
        for i in 0..<slots { state[i] = SlotState.free }
        first = 0
        count = 0
    }
}

/// A URC handed out by the engine: views into a queue slot, valid until the next engine call.
public struct ATURC {
    public let line: UnsafeRawBufferPointer
    /// The PDU line of `+CMT`, or the raw data of `+IPD`; empty otherwise.
    public let body: UnsafeRawBufferPointer
}
