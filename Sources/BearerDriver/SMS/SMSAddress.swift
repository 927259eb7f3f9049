/// A TP address (TS 23.040 §9.1.2.5) or SMSC address (TS 24.011 §8.2.5.1), held inline.
/// `bytes` holds ASCII digits (`0`-`9`, `*`, `#`, `a`-`c`) without a `+`, or, for an alphanumeric
/// address, the UTF-8 of its GSM 7-bit characters.
public struct SMSAddress: Sendable {
    public static let maxDigits = 20
    /// 11 septets at most (10 octets), each at most 3 UTF-8 bytes.
    public static let capacity = 40

    public enum Kind: Sendable, Equatable {
        case unknown, international, national, alphanumeric, other
    }

    /// Type-of-address octet as sent (bit 7 set).
    public var typeOfAddress: UInt8 = 0x81
    public private(set) var count = 0
    var storage = InlineArray<40, UInt8>(repeating: 0)

    public init() {}

    public var kind: Kind {
        switch typeOfAddress & 0x70 {
        case 0x00: return .unknown
        case 0x10: return .international
        case 0x20: return .national
        case 0x50: return .alphanumeric
        default: return .other
        }
    }

    public var isEmpty: Bool { count == 0 }

    public subscript(i: Int) -> UInt8 { storage[i] }

    /// Parses `+` followed by digits (international, TOA 0x91) or bare digits (unknown type, TOA 0x81).
    public init(number ascii: UnsafeRawBufferPointer) throws(SMSPDUError) {
        var i = 0
        if ascii.count > 0, ascii[0] == UInt8(ascii: "+") {
            typeOfAddress = 0x91
            i = 1
        }
        guard ascii.count > i, ascii.count - i <= Self.maxDigits else { throw .badParameter }
        while i < ascii.count {
            guard Self.semiOctet(ascii[i]) != nil else { throw .badParameter }
            storage[count] = ascii[i]
            count += 1
            i += 1
        }
    }

    mutating func append(_ b: UInt8) {
        if count < Self.capacity {
            storage[count] = b
            count += 1
        }
    }

    /// Same type of number and same characters.
    public func sameAs(_ o: borrowing SMSAddress) -> Bool {
        guard count == o.count, typeOfAddress & 0x70 == o.typeOfAddress & 0x70 else { return false }
        for i in 0..<count where storage[i] != o.storage[i] { return false }
        return true
    }

    /// The same telephone number after normalisation: the `+` lives in the type of number (0x91), so an
    /// international and an unknown/national address with identical digits match. Never a suffix match
    /// (`+4915550199` is not `+15550199`); alphanumeric senders match nothing.
    public func sameNumber(_ o: borrowing SMSAddress) -> Bool {
        guard kind != .alphanumeric, o.kind != .alphanumeric, count > 0, count == o.count else { return false }
        for i in 0..<count {
            guard let x = Self.semiOctet(storage[i]), let y = Self.semiOctet(o.storage[i]), x == y else { return false }
        }
        return true
    }

    /// Copies the address as text into `out`, with a leading `+` when international. Returns bytes written.
    public func write(into out: UnsafeMutableRawBufferPointer) -> Int {
        var o = 0
        if kind == .international, o < out.count {
            out[o] = UInt8(ascii: "+")
            o += 1
        }
        for i in 0..<count where o < out.count {
            out[o] = storage[i]
            o += 1
        }
        return o
    }

    // Semi-octet digit values (TS 23.040 §9.1.2.3): 0-9, then * # a b c.
    static func semiOctet(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case UInt8(ascii: "*"): return 0xA
        case UInt8(ascii: "#"): return 0xB
        case UInt8(ascii: "a"), UInt8(ascii: "A"): return 0xC
        case UInt8(ascii: "b"), UInt8(ascii: "B"): return 0xD
        case UInt8(ascii: "c"), UInt8(ascii: "C"): return 0xE
        default: return nil
        }
    }

    static func semiOctetChar(_ v: UInt8) -> UInt8 {
        switch v {
        case 0...9: return 0x30 + v
        case 0xA: return UInt8(ascii: "*")
        case 0xB: return UInt8(ascii: "#")
        case 0xC: return UInt8(ascii: "a")
        case 0xD: return UInt8(ascii: "b")
        default: return UInt8(ascii: "c")
        }
    }
}
