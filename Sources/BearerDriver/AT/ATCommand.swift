/// One command line built in fixed storage: `ATCommand("AT+CIPSEND=")` then `.int`, `.quoted`, ….
/// Commas between arguments are added automatically. Overflow or a forbidden byte is sticky and
/// makes the engine refuse the command.
public struct ATCommand {
    public static let capacity = 200
    var storage: InlineArray<200, UInt8>
    public private(set) var count = 0
    private var args = 0
    public private(set) var invalid = false

    public init(_ head: StaticString) {
        storage = InlineArray(repeating: 0)
        append(head.bytes)
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if count + bytes.count > Self.capacity { invalid = true; return }
        for b in bytes {
            storage[count] = b
            count += 1
        }
    }

    private mutating func append(byte: UInt8) {
        if count >= Self.capacity { invalid = true; return }
        storage[count] = byte
        count += 1
    }

    private mutating func separator() {
        if args > 0 { append(byte: ASCII.comma) }
        args += 1
    }

    /// Appends literal text without a separator.
    public mutating func raw(_ s: StaticString) { append(s.bytes) }

    public mutating func int(_ v: Int) {
        separator()
        DecimalText.write(v) { append(byte: $0) }
    }

    /// An argument left empty (`AT+CIPOPEN=0,"UDP",,,5000`).
    public mutating func empty() { separator() }

    /// A quoted string argument. Quotes and control bytes cannot be expressed and mark the command invalid.
    public mutating func quoted(_ bytes: UnsafeRawBufferPointer) {
        separator()
        append(byte: ASCII.quote)
        for b in bytes {
            if b == ASCII.quote || b < 0x20 || b > 0x7E { invalid = true; return }
            append(byte: b)
        }
        append(byte: ASCII.quote)
    }

    public mutating func quoted(_ s: StaticString) { quoted(s.bytes) }

    /// A quoted dotted-quad IPv4 address.
    public mutating func quoted(ipv4 a: UInt32) {
        separator()
        append(byte: ASCII.quote)
        appendDotted(a)
        append(byte: ASCII.quote)
    }

    /// Unquoted literal argument (e.g. a hex string for u-blox base syntax).
    public mutating func bare(_ bytes: UnsafeRawBufferPointer) {
        separator()
        for b in bytes {
            if b < 0x21 || b > 0x7E || b == ASCII.comma { invalid = true; return }
            append(byte: b)
        }
    }

    private mutating func appendDotted(_ a: UInt32) {
        for i in 0..<4 {
            if i > 0 { append(byte: ASCII.dot) }
            let octet = Int((a >> UInt32(24 - 8 * i)) & 0xFF)
            DecimalText.write(octet) { append(byte: $0) }
        }
    }

    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let n = count
        return try storage.span.withUnsafeBytes { (all) throws(E) -> R in try body(all.prefix(n)) }
    }
}
