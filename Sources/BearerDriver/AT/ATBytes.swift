// Byte-level helpers for AT lines. Lines are ASCII; comparing bytes keeps Unicode tables out of the firmware.

enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let ctrlZ: UInt8 = 0x1A
    static let esc: UInt8 = 0x1B
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let tab: UInt8 = 0x09
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let equals: UInt8 = 0x3D
    static let question: UInt8 = 0x3F
    static let greater: UInt8 = 0x3E  // the `>` prompt of +CMGS, +CIPSEND, +QISEND
    static let dollar: UInt8 = 0x24
    static let caret: UInt8 = 0x5E
    static let del: UInt8 = 0x7F

    @inline(__always) static func upper(_ b: UInt8) -> UInt8 { b >= 0x61 && b <= 0x7A ? b - 0x20 : b }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}

extension UnsafeRawBufferPointer {
    /// True when the bytes start with `prefix`.
    public func hasPrefix(_ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        if n > count { return false }
        let p = prefix.utf8Start
        for i in 0..<n where self[i] != p[i] { return false }
        return true
    }

    public func equals(_ s: StaticString) -> Bool {
        s.utf8CodeUnitCount == count && hasPrefix(s)
    }

    public func equals(_ other: UnsafeRawBufferPointer) -> Bool {
        if other.count != count { return false }
        for i in 0..<count where self[i] != other[i] { return false }
        return true
    }

    /// Case-insensitive ASCII equality (echo of `at+csq` matches `AT+CSQ`).
    func equalsIgnoringCase(_ other: UnsafeRawBufferPointer) -> Bool {
        if other.count != count { return false }
        for i in 0..<count where ASCII.upper(self[i]) != ASCII.upper(other[i]) { return false }
        return true
    }

    /// The bytes from `offset` on, as a view of the same memory.
    func suffix(from offset: Int) -> UnsafeRawBufferPointer {
        let o = Swift.min(Swift.max(offset, 0), count)
        return UnsafeRawBufferPointer(rebasing: self[o...])
    }

    func prefix(_ n: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[..<Swift.min(Swift.max(n, 0), count)])
    }

    /// Index of the first occurrence of `byte`, if any.
    func firstIndex(of byte: UInt8) -> Int? {
        for i in 0..<count where self[i] == byte { return i }
        return nil
    }
}

extension StaticString {
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
    var isEmptyString: Bool { utf8CodeUnitCount == 0 }
}

/// Parses an unsigned decimal number; nil when empty, not all digits, or too long.
func parseDecimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
    if bytes.count == 0 || bytes.count > 9 { return nil }
    var v = 0
    for b in bytes {
        guard ASCII.isDigit(b) else { return nil }
        v = v * 10 + Int(b - 0x30)
    }
    return v
}

/// Parses a hexadecimal number (LAC and cell id fields); nil when empty or not hex.
func parseHex(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
    if bytes.count == 0 || bytes.count > 8 { return nil }
    var v: UInt32 = 0
    for b in bytes {
        let d: UInt8
        switch b {
        case 0x30...0x39: d = b - 0x30
        case 0x41...0x46: d = b - 0x41 + 10
        case 0x61...0x66: d = b - 0x61 + 10
        default: return nil
        }
        v = v << 4 | UInt32(d)
    }
    return v
}

/// Decodes hex text into `out`; returns the byte count, or nil on odd length, a non-hex digit or no room.
func decodeHex(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
    if text.count % 2 != 0 || text.count / 2 > out.count { return nil }
    var i = 0
    while i < text.count {
        guard let hi = hexValue(text[i]), let lo = hexValue(text[i + 1]) else { return nil }
        out[i / 2] = hi << 4 | lo
        i += 2
    }
    return text.count / 2
}

@inline(__always) func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    case 0x61...0x66: return b - 0x61 + 10
    default: return nil
    }
}
