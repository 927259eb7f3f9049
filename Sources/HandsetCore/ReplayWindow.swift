/// Anti-replay window as a ring of 64-bit blocks (RFC 6479): advancing clears whole blocks, nothing shifts.
/// With `blocks` words the window accepts the last `(blocks - 1) * 64` sequence numbers.
/// `check` is pure; `commit` is called only after the ICV verifies (RFC 4303 §3.4.3).
public struct ReplayWindow<let blocks: Int>: Sendable {
    private var bitmap: InlineArray<blocks, UInt64>
    /// Highest sequence number accepted so far (0 = none yet).
    public private(set) var top: UInt64 = 0

    public static var size: UInt64 { UInt64((blocks - 1) * 64) }

    public init() {
        precondition(blocks >= 3 && blocks <= 17, "window must be 128...1024 bits")
        bitmap = InlineArray(repeating: 0)
    }

    /// A window whose top is `top` with nothing seen yet: the receiver's starting neighbourhood.
    public init(top: UInt64) {
        self.init()
        self.top = top
    }

    public enum Verdict: Equatable, Sendable { case fresh, replayed, tooOld }

    public func check(_ seq: UInt64) -> Verdict {
        if seq == 0 { return .tooOld }  // 0 is never sent (RFC 4303 §3.3.3)
        if seq > top { return .fresh }
        if top - seq >= Self.size { return .tooOld }
        let (block, bit) = Self.position(seq)
        return bitmap[block] & (1 << bit) != 0 ? .replayed : .fresh
    }

    /// Marks `seq` as seen. Precondition: `check(seq) == .fresh`.
    public mutating func commit(_ seq: UInt64) {
        if seq > top {
            let oldBlock = top >> 6
            let newBlock = seq >> 6
            let advance = min(newBlock - oldBlock, UInt64(blocks))
            var i: UInt64 = 1
            while i <= advance {
                bitmap[Int((oldBlock + i) % UInt64(blocks))] = 0
                i += 1
            }
            top = seq
        }
        let (block, bit) = Self.position(seq)
        bitmap[block] |= 1 << bit
    }

    @inline(__always) private static func position(_ seq: UInt64) -> (Int, UInt64) {
        (Int((seq >> 6) % UInt64(blocks)), seq & 63)
    }
}
