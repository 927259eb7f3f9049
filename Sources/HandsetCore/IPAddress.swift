/// An IPv4 or IPv6 address held in two words, so it copies and compares without touching the heap.
/// IPv4 lives in the low 32 bits of `low` with `high == 0`.
public struct IPAddress: Equatable, Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public var isV6: Bool

    public init(v4: UInt32) { high = 0; low = UInt64(v4); isV6 = false }
    public init(v6High: UInt64, low: UInt64) { high = v6High; self.low = low; isV6 = true }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.init(v4: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    public static let anyV4 = IPAddress(v4: 0)
    public var v4: UInt32 { UInt32(truncatingIfNeeded: low) }
    public var bitWidth: Int { isV6 ? 128 : 32 }
    /// What a handset may hold as its inner address: IPv4 unicast, not 0.0.0.0, not loopback.
    public var isUsableInnerAddress: Bool { !isV6 && v4 != 0 && v4 >> 24 != 127 && v4 >> 28 < 14 }

    /// True when the first `prefix` bits of `self` and `other` agree (and both are the same family).
    public func matches(_ other: IPAddress, prefix: Int) -> Bool {
        guard isV6 == other.isV6 else { return false }
        if !isV6 {
            let p = min(max(prefix, 0), 32)
            if p == 0 { return true }
            let mask = UInt32.max << UInt32(32 - p)
            return v4 & mask == other.v4 & mask
        }
        let p = min(max(prefix, 0), 128)
        if p <= 64 {
            if p == 0 { return true }
            let mask = UInt64.max << UInt64(64 - p)
            return high & mask == other.high & mask
        }
        if high != other.high { return false }
        let rest = p - 64
        if rest == 64 { return low == other.low }
        let mask = UInt64.max << UInt64(64 - rest)
        return low & mask == other.low & mask
    }

    /// Reads 4 or 16 bytes of network-order address.
    init(bytes: UnsafeRawBufferPointer, at: Int, v6: Bool) {
        if v6 { self.init(v6High: bytes.be64(at), low: bytes.be64(at + 8)) } else { self.init(v4: bytes.be32(at)) }
    }

    func write(to out: UnsafeMutableRawBufferPointer, at: Int) {
        if isV6 { out.put64(high, at: at); out.put64(low, at: at + 8) } else { out.put32(v4, at: at) }
    }
}
