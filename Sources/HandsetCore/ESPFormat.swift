/// RFC 4303 layout: SPI(4) | Seq(4) | IV(0 or 8) | ciphertext(payload | pad | padLen | nextHeader) | ICV.
public enum ESPFormat {
    public static let fixedHeader = 8
    /// The ciphertext is padded so that it ends on a 4-byte boundary (§2.4); AEAD block size is 1.
    @inline(__always) static func padLength(payload: Int) -> Int { (4 - (payload + 2) % 4) % 4 }

    @inline(__always) static func headerLength(_ p: SAParameters) -> Int { fixedHeader + p.ivLength }

    /// Bytes on the wire for a payload of `payload` bytes.
    @inline(__always) public static func wireLength(_ p: SAParameters, payload: Int) -> Int {
        headerLength(p) + payload + padLength(payload: payload) + 2 + p.icvLength
    }

    /// RFC 4303 Appendix A2.2: the high 32 bits of an ESN, inferred from the window top `top`, window size `w`
    /// and the low 32 bits seen on the wire. Returns nil when the number would lie below zero.
    static func inferESN(low: UInt32, top: UInt64, window w: UInt64) -> UInt64? {
        let tl = UInt64(UInt32(truncatingIfNeeded: top)), th = top >> 32, sl = UInt64(low)
        if tl >= w - 1 {
            // Case A: the window lies within one 2^32 block.
            let high = sl >= tl - (w - 1) ? th : th + 1
            return high << 32 | sl
        }
        // Case B: the window spans two blocks.
        if sl >= (tl &+ (1 << 32)) - (w - 1) {
            guard th > 0 else { return nil }
            return (th - 1) << 32 | sl
        }
        return th << 32 | sl
    }
}
