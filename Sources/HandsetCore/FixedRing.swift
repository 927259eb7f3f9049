import CHandsetShim

/// A fixed-capacity FIFO. When full, `push` refuses and counts the loss: callers decide what dropping means.
public struct FixedRing<let capacity: Int, Element: Sendable>: Sendable {
    private var items: InlineArray<capacity, Element>
    private var head = 0
    public private(set) var count = 0
    public private(set) var dropped: UInt64 = 0

    public init(filler: Element) { items = InlineArray(repeating: filler) }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    @discardableResult
    public mutating func push(_ e: Element) -> Bool {
        guard count < capacity else { dropped &+= 1; return false }
        items[(head + count) % capacity] = e
        count += 1
        return true
    }

    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let e = items[head]
        head = (head + 1) % capacity
        count -= 1
        return e
    }

    public func peek() -> Element? { count > 0 ? items[head] : nil }
}

/// Up to `capacity` bytes held inline; the unit the key-delegation outbox and inbox carry.
public struct FixedBytes<let capacity: Int>: Sendable {
    public var storage: InlineArray<capacity, UInt8>
    public var count = 0
    public init() { storage = InlineArray(repeating: 0) }

    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes(of: storage) { (b: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: b[0..<count]))
        }
    }
    public mutating func fill(_ body: (UnsafeMutableRawBufferPointer) -> Int) {
        count = withUnsafeMutableBytes(of: &storage) { body($0) }
    }
    /// Zeroes every byte (not only `count`): for buffers that held decrypted key-delegation plaintext.
    public mutating func wipe() {
        withUnsafeMutableBytes(of: &storage) { hs_zeroize($0.baseAddress, $0.count) }
        count = 0
    }
}
