/// Module storage indexes waiting for a step of the loop: AT+CMGD (kept until the module confirms or says the
/// index is empty) or AT+CMGR (announced by +CMTI or found by a listing). Fixed capacity: the reassembler holds at
/// most 16 parts, so 32 leaves room for copies and undecodable messages. A full queue counts the loss and asks
/// for a storage listing, which meets the message again and queues it anew.
struct SMSIndexQueue {
    static let capacity = 32
    private var indexes = InlineArray<32, Int32>(repeating: -1)
    private(set) var count = 0
    private(set) var overflows: UInt64 = 0

    var isEmpty: Bool { count == 0 }

    subscript(i: Int) -> Int { Int(indexes[i]) }

    func contains(_ index: Int) -> Bool {
        for i in 0..<count where Int(indexes[i]) == index { return true }
        return false
    }

    /// Queues `index` once; false when the queue is full (counted).
    @discardableResult
    mutating func add(_ index: Int) -> Bool {
        guard index >= 0, !contains(index) else { return true }
        guard count < Self.capacity else { overflows &+= 1; return false }
        indexes[count] = Int32(truncatingIfNeeded: index)
        count += 1
        return true
    }

    /// Forgets `index` (deleted, or the module stored a new message there, so the delete already happened).
    mutating func remove(_ index: Int) {
        var i = 0
        while i < count {
            if Int(indexes[i]) == index {
                count -= 1
                indexes[i] = indexes[count]
            } else {
                i += 1
            }
        }
    }
}
