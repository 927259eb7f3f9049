/// A cursor over the comma-separated fields of one response line, aware of quoted strings
/// (a comma inside quotes does not split). Errors are sticky, as in ubxlib's at_client:
/// after the first failed read every later read returns nil, so the caller checks once.
public struct ATFields {
    public let bytes: UnsafeRawBufferPointer
    private var pos: Int
    public private(set) var failed = false

    /// Fields of `line` after `prefix` (e.g. "+CSQ:"); leading spaces are skipped. Fails if the prefix is absent.
    public init(_ line: UnsafeRawBufferPointer, after prefix: StaticString) {
        bytes = line
        if line.hasPrefix(prefix) {
            pos = prefix.utf8CodeUnitCount
        } else {
            pos = line.count
            failed = true
        }
        skipSpaces()
    }

    public init(_ line: UnsafeRawBufferPointer) {
        bytes = line
        pos = 0
    }

    public var isAtEnd: Bool { pos >= bytes.count }

    private mutating func skipSpaces() {
        while pos < bytes.count && bytes[pos] == ASCII.space { pos += 1 }
    }

    /// The next field's text, without surrounding quotes; nil past the end or after a failure.
    public mutating func next() -> UnsafeRawBufferPointer? {
        if failed { return nil }
        if pos > bytes.count { failed = true; return nil }
        skipSpaces()
        var start = pos
        var end: Int
        if pos < bytes.count && bytes[pos] == ASCII.quote {
            start = pos + 1
            end = start
            while end < bytes.count && bytes[end] != ASCII.quote { end += 1 }
            if end >= bytes.count { failed = true; return nil }  // unterminated string
            pos = end + 1
            while pos < bytes.count && bytes[pos] != ASCII.comma { pos += 1 }
        } else {
            while pos < bytes.count && bytes[pos] != ASCII.comma { pos += 1 }
            end = pos
            while end > start && bytes[end - 1] == ASCII.space { end -= 1 }
        }
        let field = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        pos += 1  // past the comma; beyond count marks the end
        return field
    }

    /// The next field as a decimal integer. An absent or malformed field fails the cursor.
    public mutating func int() -> Int? {
        guard let f = next() else { return nil }
        guard let v = parseDecimal(f) else { failed = true; return nil }
        return v
    }

    /// The next field as an integer, or nil without failing when it is empty or missing.
    public mutating func optionalInt() -> Int? {
        if failed || pos > bytes.count { return nil }
        guard let f = next() else { return nil }
        if f.count == 0 { return nil }
        guard let v = parseDecimal(f) else { failed = true; return nil }
        return v
    }

    /// The next field as text (quotes removed). Fails only past the end.
    public mutating func string() -> UnsafeRawBufferPointer? { next() }

    /// The next field as a hexadecimal number (quoted LAC/CI), nil without failing when empty or missing.
    public mutating func optionalHex() -> UInt32? {
        if failed || pos > bytes.count { return nil }
        guard let f = next() else { return nil }
        if f.count == 0 { return nil }
        guard let v = parseHex(f) else { failed = true; return nil }
        return v
    }

    public mutating func skip(_ n: Int = 1) {
        for _ in 0..<n { _ = next() }
    }

    /// Number of fields left, counted without consuming them.
    public var remaining: Int {
        var copy = self
        var n = 0
        while copy.pos <= copy.bytes.count, !copy.failed, copy.next() != nil { n += 1 }
        return n
    }
}
