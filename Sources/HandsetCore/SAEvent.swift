/// What the SA table tells the key-delegation layer. Soft expiry and sequence exhaustion ask for a rekey;
/// hard expiry means the SA is already gone.
public enum SAEvent: Equatable, Sendable {
    case softExpired(spi: UInt32, direction: SADirection)
    case hardExpired(spi: UInt32, direction: SADirection)
    case sequenceExhausted(spi: UInt32)
}

/// A fixed ring of events; when full, the oldest is kept and `dropped` counts the loss.
public struct EventQueue<let capacity: Int>: Sendable {
    private var items: InlineArray<capacity, SAEvent>
    private var head = 0
    public private(set) var count = 0
    public private(set) var dropped: UInt64 = 0

    public init() { items = InlineArray(repeating: .sequenceExhausted(spi: 0)) }

    public mutating func push(_ e: SAEvent) {
        guard count < capacity else { dropped += 1; return }
        items[(head + count) % capacity] = e
        count += 1
    }

    public mutating func pop() -> SAEvent? {
        guard count > 0 else { return nil }
        let e = items[head]
        head = (head + 1) % capacity
        count -= 1
        return e
    }
}
