// Hex text for the command-line tools and the emulated world: one parser, one printer.

/// Parses hex digits (an optional 0x prefix); `name` says which argument was wrong.
func hexArgument(_ s: String, name: String) throws -> [UInt8] {
    var t = Substring(s)
    if t.hasPrefix("0x") || t.hasPrefix("0X") { t = t.dropFirst(2) }
    guard t.count % 2 == 0 else { throw ToolError("\(name): odd number of hex digits") }
    var out: [UInt8] = []
    out.reserveCapacity(t.count / 2)
    var i = t.startIndex
    while i < t.endIndex {
        let j = t.index(i, offsetBy: 2)
        guard let b = UInt8(t[i..<j], radix: 16) else { throw ToolError("\(name): not hex: '\(t[i..<j])'") }
        out.append(b)
        i = j
    }
    return out
}

/// Bytes as hex digits: lowercase by default (ESP tools), uppercase as AT+CMGS carries PDUs.
func hexString<C: Collection<UInt8>>(_ bytes: C, uppercase: Bool = false) -> String {
    let digits = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
    var s = [UInt8]()
    s.reserveCapacity(bytes.count * 2)
    for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
    return String(decoding: s, as: UTF8.self)
}
