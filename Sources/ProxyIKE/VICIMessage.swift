/// A VICI message: an ordered tree of sections, key/values and lists (strongSwan's
/// src/libcharon/plugins/vici/README.md, "Message format"). Order is kept: charon reads some sections in order.
public struct VICIMessage: Equatable, Sendable {
    public enum Element: Equatable, Sendable {
        case value([UInt8])
        case list([[UInt8]])
        case section(VICIMessage)
    }

    public var entries: [(name: String, element: Element)] = []

    public init() {}

    public init(_ entries: [(String, Element)]) {
        self.entries = entries.map { (name: $0.0, element: $0.1) }
    }

    public static func == (a: VICIMessage, b: VICIMessage) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.name == $1.name && $0.element == $1.element }
    }

    public subscript(name: String) -> Element? {
        entries.first { $0.name == name }?.element
    }

    /// A key/value as text (charon sends numbers and flags as strings too).
    public func string(_ name: String) -> String? {
        guard case .value(let v)? = self[name] else { return nil }
        return String(decoding: v, as: UTF8.self)
    }

    public func section(_ name: String) -> VICIMessage? {
        guard case .section(let s)? = self[name] else { return nil }
        return s
    }

    public func list(_ name: String) -> [String]? {
        guard case .list(let l)? = self[name] else { return nil }
        return l.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The sections of this message, in order (list-sa and updown events name their section after the IKE_SA).
    public var sections: [(name: String, section: VICIMessage)] {
        entries.compactMap { e in if case .section(let s) = e.element { (e.name, s) } else { nil } }
    }

    public mutating func add(_ name: String, _ value: String) { entries.append((name, .value(Array(value.utf8)))) }
    public mutating func add(_ name: String, bytes: [UInt8]) { entries.append((name, .value(bytes))) }
    public mutating func add(_ name: String, list: [String]) { entries.append((name, .list(list.map { Array($0.utf8) }))) }
    /// A list of binary items (certificates in `certs`/`cacerts`).
    public mutating func add(_ name: String, listOfBytes items: [[UInt8]]) { entries.append((name, .list(items))) }
    public mutating func add(_ name: String, section: VICIMessage) { entries.append((name, .section(section))) }
}

/// Anything that can go wrong between us and a charon. Malformed input always ends here, never in a trap.
public enum VICIError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated
    case unknownElement(UInt8)
    case unknownPacketType(UInt8)
    case unbalancedSection
    case unclosedList
    case elementOutsideList(UInt8)
    case itemOutsideList
    case tooDeep
    case nameTooLong(String)
    case valueTooLong(Int)
    case segmentTooLarge(Int)
    case nameNotASCII
    case unexpectedPacket(UInt8)
    case commandUnknown(String)
    case eventUnknown(String)
    case connect(path: String, errno: Int32)
    case io(errno: Int32)
    case closed
    case timeout

    public var description: String {
        switch self {
        case .truncated: "message truncated"
        case .unknownElement(let t): "unknown message element type \(t)"
        case .unknownPacketType(let t): "unknown packet type \(t)"
        case .unbalancedSection: "section start/end not balanced"
        case .unclosedList: "list not closed"
        case .elementOutsideList(let t): "element type \(t) inside a list"
        case .itemOutsideList: "list item or list end outside a list"
        case .tooDeep: "sections nested too deep"
        case .nameTooLong(let n): "name longer than 255 octets: \(n.prefix(40))"
        case .valueTooLong(let n): "value of \(n) octets (at most 65535)"
        case .segmentTooLarge(let n): "segment of \(n) octets (at most \(VICI.maxSegment))"
        case .nameNotASCII: "name is not ASCII"
        case .unexpectedPacket(let t): "unexpected packet type \(t)"
        case .commandUnknown(let c): "charon has no command '\(c)'"
        case .eventUnknown(let e): "charon has no event '\(e)'"
        case .connect(let p, let e): "cannot connect to \(p): errno \(e)"
        case .io(let e): "socket error: errno \(e)"
        case .closed: "charon closed the connection"
        case .timeout: "no answer from charon in time"
        }
    }
}

public enum VICI {
    /// README, "Transport protocol": segments carry at most 512 KiB.
    public static let maxSegment = 512 * 1024
    /// Our own bound; charon's messages nest a handful deep.
    public static let maxDepth = 32

    enum ElementType: UInt8 {
        case sectionStart = 1, sectionEnd = 2, keyValue = 3, listStart = 4, listItem = 5, listEnd = 6
    }
}
