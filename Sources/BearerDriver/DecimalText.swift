/// The tree's one integer formatter for the handset side (AT command arguments, log lines, device paths): decimal
/// digits into the caller's storage, without a String, so it allocates nothing and builds as Embedded Swift.
public enum DecimalText {
    /// Hands `put` the ASCII digits of `v`, most significant first, after a `-` for a negative value.
    @inline(__always)
    public static func write<T: BinaryInteger>(_ v: T, _ put: (UInt8) -> Void) {
        var magnitude = UInt64(truncatingIfNeeded: v.magnitude)  // Int.min has no positive counterpart
        if v < 0 { put(0x2D) }
        var digits = InlineArray<20, UInt8>(repeating: 0)
        var n = 0
        repeat {
            digits[n] = 0x30 + UInt8(magnitude % 10)
            magnitude /= 10
            n += 1
        } while magnitude > 0
        while n > 0 {
            n -= 1
            put(digits[n])
        }
    }
}
