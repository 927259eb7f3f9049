import Foundation
import SMPP

/// Concatenated uplinks put back together (TS 23.040 §9.2.3.24.1), bounded: at most `limit` incomplete messages,
/// each evicted `timeout` seconds after its first part. Keyed by originator and reference, so two handsets using
/// the same reference never mix. Each part carries a token (its pending acknowledgement) that comes back out
/// with the whole message or with its eviction.
public struct UplinkReassembly<Token> {
    public enum Outcome {
        /// A whole message, with the tokens of every part that made it.
        case complete([UInt8], [Token])
        /// Stored, waiting for its other parts.
        case stored
        /// Refused: a part number outside 1...total, or a total that disagrees with earlier parts.
        case invalid(Token)
    }

    struct Key: Hashable { var originator: String; var reference: Int }
    struct Partial { var total: Int; var parts: [Int: [UInt8]]; var tokens: [Token]; var firstSeen: Double }

    public let limit: Int
    public let timeout: Double
    private var partials: [Key: Partial] = [:]
    public private(set) var evicted = 0

    public init(limit: Int, timeout: Double) {
        self.limit = limit
        self.timeout = timeout
    }

    public var incomplete: Int { partials.count }

    /// Takes one part. Single-part messages come straight back out. When storing would exceed `limit`, the
    /// oldest incomplete message is evicted first (returned in `dropped`).
    public mutating func add(_ udh: UDHFields, payload: [UInt8], from originator: String, token: Token, now: Double)
        -> (outcome: Outcome, dropped: [Token]) {
        guard let total = udh.concatTotal, let seq = udh.concatSeq, let ref = udh.concatRef, total > 1 else {
            return (.complete(payload, [token]), [])
        }
        guard (1...total).contains(seq) else { return (.invalid(token), []) }
        let key = Key(originator: originator, reference: ref)
        var dropped: [Token] = []
        if var p = partials[key] {
            guard p.total == total else { return (.invalid(token), []) }
            p.parts[seq] = payload  // a repeated part replaces the earlier copy
            p.tokens.append(token)
            partials[key] = p
        } else {
            while partials.count >= limit, let oldest = partials.min(by: { $0.value.firstSeen < $1.value.firstSeen }) {
                dropped += oldest.value.tokens
                partials[oldest.key] = nil
                evicted += 1
            }
            partials[key] = Partial(total: total, parts: [seq: payload], tokens: [token], firstSeen: now)
        }
        guard let p = partials[key], p.parts.count == total else { return (.stored, dropped) }
        partials[key] = nil
        return (.complete((1...total).flatMap { p.parts[$0]! }, p.tokens), dropped)
    }

    /// Drops every message whose first part is older than `timeout`; returns their parts' tokens.
    public mutating func evictExpired(now: Double) -> [Token] {
        let old = partials.filter { now - $0.value.firstSeen >= timeout }
        for k in old.keys { partials[k] = nil }
        evicted += old.count
        return old.values.flatMap(\.tokens)
    }

    /// Everything still incomplete (at shutdown).
    public mutating func removeAll() -> [Token] {
        defer { partials.removeAll() }
        return partials.values.flatMap(\.tokens)
    }
}
