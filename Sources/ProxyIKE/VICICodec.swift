/// Encoding and decoding of VICI messages and packets (README "Packet layer" and "Message format").
extension VICIMessage {
    /// The element encoding of this message. Names over 255 octets or values over 65535 are refused.
    public func encoded() throws(VICIError) -> [UInt8] {
        var out: [UInt8] = []
        try encode(into: &out)
        return out
    }

    func encode(into out: inout [UInt8]) throws(VICIError) {
        for (name, element) in entries {
            switch element {
            case .value(let v):
                out.append(VICI.ElementType.keyValue.rawValue)
                try Self.putName(name, &out)
                try Self.putValue(v, &out)
            case .list(let items):
                out.append(VICI.ElementType.listStart.rawValue)
                try Self.putName(name, &out)
                for item in items {
                    out.append(VICI.ElementType.listItem.rawValue)
                    try Self.putValue(item, &out)
                }
                out.append(VICI.ElementType.listEnd.rawValue)
            case .section(let s):
                out.append(VICI.ElementType.sectionStart.rawValue)
                try Self.putName(name, &out)
                try s.encode(into: &out)
                out.append(VICI.ElementType.sectionEnd.rawValue)
            }
        }
    }

    static func putName(_ name: String, _ out: inout [UInt8]) throws(VICIError) {
        let b = Array(name.utf8)
        guard b.count <= 255 else { throw .nameTooLong(name) }
        guard b.allSatisfy({ $0 < 0x80 }) else { throw .nameNotASCII }
        out.append(UInt8(b.count))
        out += b
    }

    static func putValue(_ v: [UInt8], _ out: inout [UInt8]) throws(VICIError) {
        guard v.count <= 0xFFFF else { throw .valueTooLong(v.count) }
        out.append(UInt8(v.count >> 8))
        out.append(UInt8(v.count & 0xFF))
        out += v
    }

    /// Decodes a whole message; anything malformed is a typed error.
    public static func decode(_ bytes: some Collection<UInt8>) throws(VICIError) -> VICIMessage {
        guard bytes.count <= VICI.maxSegment else { throw .segmentTooLarge(bytes.count) }
        var r = ByteReader(bytes: Array(bytes))
        // A stack of open sections; the root is element 0.
        var stack: [(name: String, message: VICIMessage)] = [("", VICIMessage())]
        var list: (name: String, items: [[UInt8]])?
        while !r.atEnd {
            let t = try r.u8()
            guard let type = VICI.ElementType(rawValue: t) else { throw .unknownElement(t) }
            if list != nil, type != .listItem, type != .listEnd { throw .elementOutsideList(t) }
            switch type {
            case .sectionStart:
                guard stack.count <= VICI.maxDepth else { throw .tooDeep }
                stack.append((try r.name(), VICIMessage()))
            case .sectionEnd:
                guard stack.count > 1 else { throw .unbalancedSection }
                let done = stack.removeLast()
                stack[stack.count - 1].message.entries.append((done.name, .section(done.message)))
            case .keyValue:
                let name = try r.name()
                stack[stack.count - 1].message.entries.append((name, .value(try r.value())))
            case .listStart:
                list = (try r.name(), [])
            case .listItem:
                guard list != nil else { throw .itemOutsideList }
                list!.items.append(try r.value())
            case .listEnd:
                guard let l = list else { throw .itemOutsideList }
                stack[stack.count - 1].message.entries.append((l.name, .list(l.items)))
                list = nil
            }
        }
        guard list == nil else { throw .unclosedList }
        guard stack.count == 1 else { throw .unbalancedSection }
        return stack[0].message
    }
}

/// One packet inside a transport segment.
public enum VICIPacket: Equatable, Sendable {
    case commandRequest(String, VICIMessage)
    case commandResponse(VICIMessage)
    case commandUnknown
    case eventRegister(String)
    case eventUnregister(String)
    case eventConfirm
    case eventUnknown
    case event(String, VICIMessage)

    public var type: UInt8 {
        switch self {
        case .commandRequest: 0
        case .commandResponse: 1
        case .commandUnknown: 2
        case .eventRegister: 3
        case .eventUnregister: 4
        case .eventConfirm: 5
        case .eventUnknown: 6
        case .event: 7
        }
    }

    /// The segment payload (without the 4-octet length).
    public func encoded() throws(VICIError) -> [UInt8] {
        var out = [type]
        switch self {
        case .commandRequest(let n, let m), .event(let n, let m):
            try VICIMessage.putName(n, &out)
            try m.encode(into: &out)
        case .commandResponse(let m):
            try m.encode(into: &out)
        case .eventRegister(let n), .eventUnregister(let n):
            try VICIMessage.putName(n, &out)
        case .commandUnknown, .eventConfirm, .eventUnknown:
            break
        }
        guard out.count <= VICI.maxSegment else { throw .segmentTooLarge(out.count) }
        return out
    }

    /// The segment with its length prefix, ready for the stream.
    public func framed() throws(VICIError) -> [UInt8] {
        let p = try encoded()
        let n = UInt32(p.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + p
    }

    public static func decode(_ segment: [UInt8]) throws(VICIError) -> VICIPacket {
        guard segment.count <= VICI.maxSegment else { throw .segmentTooLarge(segment.count) }
        var r = ByteReader(bytes: segment)
        let t = try r.u8()
        switch t {
        case 0: return .commandRequest(try r.name(), try VICIMessage.decode(r.rest))
        case 1: return .commandResponse(try VICIMessage.decode(r.rest))
        case 2: return try r.empty(.commandUnknown)
        case 3: return .eventRegister(try r.onlyName())
        case 4: return .eventUnregister(try r.onlyName())
        case 5: return try r.empty(.eventConfirm)
        case 6: return try r.empty(.eventUnknown)
        case 7: return .event(try r.name(), try VICIMessage.decode(r.rest))
        default: throw .unknownPacketType(t)
        }
    }

    /// The segment length from a 4-octet header, refused above the README's limit before anything is allocated.
    public static func segmentLength(_ header: [UInt8]) throws(VICIError) -> Int {
        guard header.count == 4 else { throw .truncated }
        let n = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard n <= VICI.maxSegment else { throw .segmentTooLarge(n) }
        guard n > 0 else { throw .truncated }
        return n
    }
}

/// A bounds-checked cursor: every read past the end is `.truncated`.
struct ByteReader {
    let bytes: [UInt8]
    var at = 0

    var atEnd: Bool { at >= bytes.count }
    var rest: ArraySlice<UInt8> { bytes[at...] }

    mutating func u8() throws(VICIError) -> UInt8 {
        guard at < bytes.count else { throw .truncated }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func take(_ n: Int) throws(VICIError) -> [UInt8] {
        guard n <= bytes.count - at else { throw .truncated }
        defer { at += n }
        return Array(bytes[at..<at + n])
    }

    mutating func name() throws(VICIError) -> String {
        let b = try take(Int(try u8()))
        guard b.allSatisfy({ $0 < 0x80 }) else { throw .nameNotASCII }
        return String(decoding: b, as: UTF8.self)
    }

    mutating func value() throws(VICIError) -> [UInt8] {
        let n = Int(try u8()) << 8 | Int(try u8())
        return try take(n)
    }

    mutating func onlyName() throws(VICIError) -> String {
        let n = try name()
        guard atEnd else { throw .unexpectedPacket(bytes[0]) }
        return n
    }

    func empty(_ p: VICIPacket) throws(VICIError) -> VICIPacket {
        guard atEnd else { throw .unexpectedPacket(bytes[0]) }
        return p
    }
}
