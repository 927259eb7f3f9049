/// How an unsolicited or response line carries more than itself.
public enum ATLineBody: Equatable, Sendable {
    /// The line is complete.
    case none
    /// The next line belongs to this one (`+CMT: ,23` then the PDU, TS 27.005 §3.4.1).
    case nextLine
    /// Raw bytes follow the line; their count is field `lengthField` after the prefix
    /// (SIMCom `+IPD12`, Quectel `+QIRD: 12,"1.2.3.4",5000`).
    case rawBytes(lengthField: Int)
    /// Raw bytes follow the line's header on the same line, right after a colon that ends the header; their count
    /// is field `lengthField` after the prefix, the header's last field (SIM800 single-connection `+IPD,12:<data>`).
    /// The header is taken when that colon arrives; a header ended by CR or LF instead is dropped and counted.
    case inlineBytes(lengthField: Int)
}

/// One row of a dialect's line table: a prefix, whether it is a URC, and what follows it.
public struct ATLineRule: Sendable {
    public let prefix: StaticString
    public let unsolicited: Bool
    public let body: ATLineBody
    /// The line starts with a connection number, `<n>,` and maybe a space, before `prefix`
    /// (SIM800 multi-connection mode: `0, CLOSED`, `1, SEND OK`).
    public let numbered: Bool
    /// The line is the final result of the command in flight (SIM800 `0, SEND OK`, `SHUT OK`); only
    /// looked for while a command runs. Such rows are never URCs.
    public let ends: ATFinal?

    public init(_ prefix: StaticString, unsolicited: Bool = true, body: ATLineBody = .none, numbered: Bool = false) {
        self.prefix = prefix
        self.unsolicited = unsolicited
        self.body = body
        self.numbered = numbered
        self.ends = nil
    }

    /// A vendor final result code: `line` ends the command in flight with `result`.
    public init(final prefix: StaticString, numbered: Bool = false, _ result: ATFinal) {
        self.prefix = prefix
        self.unsolicited = false
        self.body = .none
        self.numbered = numbered
        self.ends = result
    }

    static let unused = ATLineRule("", unsolicited: false)

    /// Where `prefix` starts in `line`: 0, or past `<n>,` and one optional space for numbered rows; nil when
    /// a numbered row's number is missing.
    @inline(__always) func prefixStart(_ line: UnsafeRawBufferPointer) -> Int? {
        if !numbered { return 0 }
        var i = 0
        while i < line.count && ASCII.isDigit(line[i]) { i += 1 }
        if i == 0 || i >= line.count || line[i] != ASCII.comma { return nil }
        i += 1
        if i < line.count && line[i] == ASCII.space { i += 1 }
        return i
    }

    /// True when `line` is this row's line.
    public func matches(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let start = prefixStart(line) else { return false }
        return start == 0 ? line.hasPrefix(prefix) : line.suffix(from: start).hasPrefix(prefix)
    }

    /// The fields of a matching `line`: those after the prefix, or for numbered rows the whole line (field 0
    /// is the connection number).
    public func fields(_ line: UnsafeRawBufferPointer) -> ATFields {
        numbered ? ATFields(line) : ATFields(line, after: prefix)
    }
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

    /// The first unsolicited rule that matches `line`.
    func unsolicitedMatch(_ line: UnsafeRawBufferPointer) -> ATLineRule? {
        for i in 0..<count {
            let r = rules[i]
            if r.unsolicited && r.matches(line) { return r }
        }
        return nil
    }

    /// The unsolicited rule with an inline body whose header `line` is, complete up to (not including) the colon
    /// just read: the prefix, then the length field as the last field, 1 to 5 digits.
    func inlineBodyMatch(_ line: UnsafeRawBufferPointer) -> ATLineRule? {
        for i in 0..<count {
            let r = rules[i]
            guard r.unsolicited, case .inlineBytes(let field) = r.body, line.hasPrefix(r.prefix) else { continue }
            var at = r.prefix.utf8CodeUnitCount
            var commas = 0
            while commas < field && at < line.count {
                if line[at] == ASCII.comma { commas += 1 }
                at += 1
            }
            let digits = line.count - at
            guard commas == field, digits >= 1, digits <= 5 else { continue }
            var all = true
            for k in at..<line.count where !ASCII.isDigit(line[k]) { all = false }
            if all { return r }
        }
        return nil
    }

    /// The raw-body rule for a response line, if any.
    func responseBody(_ line: UnsafeRawBufferPointer) -> ATLineBody {
        for i in 0..<count {
            let r = rules[i]
            if !r.unsolicited && r.ends == nil && line.hasPrefix(r.prefix) { return r.body }
        }
        return .none
    }

    /// The vendor final result `line` stands for, if a row names it.
    func finalMatch(_ line: UnsafeRawBufferPointer) -> ATFinal? {
        for i in 0..<count {
            let r = rules[i]
            if let e = r.ends, r.matches(line) { return e }
        }
        return nil
    }

    /// Lines that announce a module (re)start, TS 27.007 and vendor manuals.
    static func isReadyIndication(_ line: UnsafeRawBufferPointer) -> Bool {
        line.equals("RDY") || line.equals("APP RDY") || line.equals("SMS Ready") || line.equals("+CPIN: READY")
    }
}
