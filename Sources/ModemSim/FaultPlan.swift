// Fault injection: which faults are armed, and when each fires.
//
// Syntax (also printed by `handset-emu modem --help`): a comma-separated list of `NAME[=VALUE][@P | #N]`.
//   NAME alone   fires at every opportunity
//   NAME@P       fires at each opportunity with probability P (0...1), from a seeded generator
//   NAME#N       fires once, at the N-th opportunity (1-based)
// An "opportunity" is: each AT command line (reboot-mid-command, garbage, drop-final, interleave-urc), each URC
// (delay-urc), each incoming SMS (sms-full), each AT+CMGS (sms-send-fail), each PDU sent at the +CMGS prompt (slow-sms-send), each UDP datagram carried (socket-close).
// slow-link=BAUD is a mode. SMS centre faults: each SMS part carried either way (sms-loss, sms-duplicate), each
// concatenated MT message (sms-reorder, partial-sms), each MT part that has a next part (reboot-between-parts), each PDU sent
// at the +CMGS prompt (reboot-mid-sms).

public enum FaultKind: String, Sendable, CaseIterable {
    case rebootMidCommand = "reboot-mid-command"  // module reboots after echoing a command, before answering it
    case garbage                                  // random non-ASCII bytes and a CRLF before an answer
    case dropFinal = "drop-final"                 // the final result code (OK/ERROR) of a command is never sent
    case delayURC = "delay-urc"                   // a URC is held back VALUE ms (default 1500)
    case interleaveURC = "interleave-urc"         // a URC is sent between a command's answer and its final result
    case smsFull = "sms-full"                     // SMS storage reports full: incoming SMS are refused, CMGW-like saves fail
    case smsSendFail = "sms-send-fail"            // AT+CMGS is refused with +CMS ERROR: VALUE (default 331, no network service)
    case socketClose = "socket-close"             // the network closes a socket after a datagram
    case smsLoss = "sms-loss"                     // the SMS centre loses a part (MO: after the module's +CMGS answer)
    case smsDuplicate = "sms-duplicate"           // the SMS centre carries a part twice
    case smsReorder = "sms-reorder"               // the parts of a concatenated MT message arrive last first
    case partialSMS = "partial-sms"               // only the first part of a concatenated MT message is carried;
                                                  // the rest never comes
    case rebootBetweenParts = "reboot-between-parts" // the module reboots after storing an MT part, before the next
    case rebootMidSMS = "reboot-mid-sms"          // the module reboots after the PDU at the +CMGS prompt, before
                                                  // answering; VALUE=1: the network got it, else a coin decides
    case slowLink = "slow-link"                   // output paced at VALUE baud (10 bits per byte)
    case slowSMSSend = "slow-sms-send"            // the answer to the PDU at the +CMGS prompt comes VALUE ms later
                                                  // (default 3000); URCs go out meanwhile, as on a real network
}

public struct FaultRule: Sendable, Equatable {
    public enum Trigger: Sendable, Equatable {
        case always
        case probability(Double)
        case nth(Int)
    }
    public var kind: FaultKind
    public var value: Int?
    public var trigger: Trigger

    public init(kind: FaultKind, value: Int? = nil, trigger: Trigger) {
        self.kind = kind; self.value = value; self.trigger = trigger
    }
}

public struct FaultSpecError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Parsed fault rules plus per-rule opportunity counters. Confined to the simulator queue.
public struct FaultPlan: Sendable {
    public private(set) var rules: [FaultRule]
    private var counters: [FaultKind: Int] = [:]
    private var rng: SplitMix64
    /// How often each fault actually fired.
    public private(set) var fired: [FaultKind: Int] = [:]

    public init(rules: [FaultRule] = [], seed: UInt64 = 1) {
        self.rules = rules
        self.rng = SplitMix64(seed: seed)
    }

    public init(spec: String, seed: UInt64 = 1) throws(FaultSpecError) {
        self.init(rules: try FaultPlan.parse(spec), seed: seed)
    }

    public static func parse(_ spec: String) throws(FaultSpecError) -> [FaultRule] {
        var rules: [FaultRule] = []
        for rawItem in spec.split(separator: ",") {
            let item = rawItem.trimmingCharactersInSpace()
            if item.isEmpty { continue }
            var body = Substring(item)
            var trigger = FaultRule.Trigger.always
            if let at = body.firstIndex(of: "@") {
                guard let p = Double(body[body.index(after: at)...]), p >= 0, p <= 1 else {
                    throw FaultSpecError(description: "bad probability in '\(item)': want NAME@P with 0 <= P <= 1")
                }
                trigger = .probability(p)
                body = body[..<at]
            } else if let hash = body.firstIndex(of: "#") {
                guard let n = Int(body[body.index(after: hash)...]), n >= 1 else {
                    throw FaultSpecError(description: "bad trigger count in '\(item)': want NAME#N with N >= 1")
                }
                trigger = .nth(n)
                body = body[..<hash]
            }
            var value: Int?
            if let eq = body.firstIndex(of: "=") {
                guard let v = Int(body[body.index(after: eq)...]), v > 0 else {
                    throw FaultSpecError(description: "bad value in '\(item)': want NAME=POSITIVE-INTEGER")
                }
                value = v
                body = body[..<eq]
            }
            guard let kind = FaultKind(rawValue: String(body)) else {
                let known = FaultKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw FaultSpecError(description: "unknown fault '\(body)'; known: \(known)")
            }
            if kind == .slowLink && value == nil {
                throw FaultSpecError(description: "slow-link needs a baud rate: slow-link=9600")
            }
            rules.append(FaultRule(kind: kind, value: value, trigger: trigger))
        }
        return rules
    }

    public func isArmed(_ kind: FaultKind) -> Bool { rules.contains { $0.kind == kind } }

    public func value(of kind: FaultKind) -> Int? { rules.first { $0.kind == kind }?.value }

    /// Counts one opportunity for `kind` and says whether the fault fires now.
    public mutating func fires(_ kind: FaultKind) -> Bool {
        guard let rule = rules.first(where: { $0.kind == kind }) else { return false }
        let n = (counters[kind] ?? 0) + 1
        counters[kind] = n
        let hit: Bool
        switch rule.trigger {
        case .always: hit = true
        case .probability(let p): hit = Double(rng.next() >> 11) / Double(1 << 53) < p
        case .nth(let target): hit = n == target
        }
        if hit { fired[kind, default: 0] += 1 }
        return hit
    }

    /// Arms `rule`, replacing any rule of its kind; NAME#N counts opportunities from now on.
    public mutating func add(_ rule: FaultRule) {
        rules.removeAll { $0.kind == rule.kind }
        rules.append(rule)
        counters[rule.kind] = 0
    }
    public mutating func remove(_ kind: FaultKind) { rules.removeAll { $0.kind == kind } }

    /// Random bytes for the garbage fault: high-bit bytes, so they can never spell a result code.
    mutating func garbageBytes() -> [UInt8] {
        let count = 4 + Int(rng.next() % 24)
        return (0..<count).map { _ in UInt8(0x80 | (rng.next() & 0x7F)) }
    }

    mutating func coinFlip() -> Bool { rng.next() & 1 == 1 }

    mutating func randomIndex(below n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
}

/// Small deterministic generator so a `--seed` reproduces a run (the simulator's faults, the torture campaign's
/// choices): the one SplitMix64 of the tree.
public struct SplitMix64: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Substring {
    func trimmingCharactersInSpace() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
