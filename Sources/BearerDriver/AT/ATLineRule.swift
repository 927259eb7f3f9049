/// How an unsolicited or response line carries more than itself.
public enum ATLineBody: Equatable, Sendable {
    /// The line is complete.
    case none
    /// The next line belongs to this one (`+CMT: ,23` then the PDU, TS 27.005 §3.4.1).
    case nextLine
    /// Raw bytes follow the line; their count is field `lengthField` after the prefix
    /// (SIMCom `+IPD12`, Quectel `+QIRD: 12,"1.2.3.4",5000`).
    case rawBytes(lengthField: Int)
}

/// One row of a dialect's line table: a prefix, whether it is a URC, and what follows it.
public struct ATLineRule: Sendable {
    public let prefix: StaticString
    public let unsolicited: Bool
    public let body: ATLineBody

    public init(_ prefix: StaticString, unsolicited: Bool = true, body: ATLineBody = .none) {
        self.prefix = prefix
        self.unsolicited = unsolicited
        self.body = body
    }

    static let unused = ATLineRule("", unsolicited: false)
}

/// A fixed table of line rules, always armed: the Zephyr modem_chat "unsolicited matches" as data.
public struct ATLineRules: Sendable {
    public static let capacity = 32
    var rules: InlineArray<32, ATLineRule>
    public private(set) var count = 0

    public init() { rules = InlineArray(repeating: .unused) }

    /// Adds a rule; returns false when the table is full.
    @discardableResult
    public mutating func add(_ rule: ATLineRule) -> Bool {
        if count >= Self.capacity { return false }
        rules[count] = rule
        count += 1
        return true
    }

    public func rule(at i: Int) -> ATLineRule { rules[i] }

    /// The first unsolicited rule whose prefix starts `line`.
    func unsolicitedMatch(_ line: UnsafeRawBufferPointer) -> ATLineRule? {
        for i in 0..<count {
            let r = rules[i]
            if r.unsolicited && line.hasPrefix(r.prefix) { return r }
        }
        return nil
    }

    /// The raw-body rule for a response line, if any.
    func responseBody(_ line: UnsafeRawBufferPointer) -> ATLineBody {
        for i in 0..<count {
            let r = rules[i]
            if !r.unsolicited && line.hasPrefix(r.prefix) { return r.body }
        }
        return .none
    }

    /// Lines that announce a module (re)start, TS 27.007 and vendor manuals.
    static func isReadyIndication(_ line: UnsafeRawBufferPointer) -> Bool {
        line.equals("RDY") || line.equals("APP RDY") || line.equals("SMS Ready") || line.equals("+CPIN: READY")
    }
}
