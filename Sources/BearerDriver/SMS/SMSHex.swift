/// ASCII hex in and out on caller buffers. The AT engine hands a PDU over as one line of hex.
public enum SMSHex {
    /// Decodes hex digits (either case) into `out`. Leading and trailing spaces, CR and LF are ignored.
    /// Returns the number of octets written; on error `out` may hold a partial prefix.
    public static func decode(_ ascii: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer)
        throws(SMSPDUError) -> Int
    {
        var start = 0
        var end = ascii.count
        while start < end, isBlank(ascii[start]) { start += 1 }
        while end > start, isBlank(ascii[end - 1]) { end -= 1 }
        let digits = end - start
        guard digits % 2 == 0 else { throw .badHex }
        guard digits / 2 <= out.count else { throw .bufferTooSmall }
        var o = 0
        var i = start
        while i < end {
            guard let hi = nibble(ascii[i]), let lo = nibble(ascii[i + 1]) else { throw .badHex }
            out[o] = hi << 4 | lo
            o += 1
            i += 2
        }
        return o
    }

    /// Writes `bytes` as uppercase hex into `out`; returns the number of characters written.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer)
        throws(SMSPDUError) -> Int
    {
        guard bytes.count * 2 <= out.count else { throw .bufferTooSmall }
        for i in 0..<bytes.count {
            out[2 * i] = digit(bytes[i] >> 4)
            out[2 * i + 1] = digit(bytes[i] & 0x0F)
        }
        return bytes.count * 2
    }

    @inline(__always) static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c &- 0x30
        case 0x41...0x46: return c &- 0x41 &+ 10
        case 0x61...0x66: return c &- 0x61 &+ 10
        default: return nil
        }
    }

    @inline(__always) static func digit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x41 + v - 10 }

    @inline(__always) static func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0D || c == 0x0A || c == 0x09 }
}
