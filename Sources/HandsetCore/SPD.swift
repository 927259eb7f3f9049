/// What the SPD says to do with a datagram. `protect` names the SA template the key request asks for.
public enum PolicyAction: Equatable, Sendable {
    case protect(template: UInt16)
    case bypass
    case discard
}

public struct SPDRule: Equatable, Sendable {
    public var pattern: SelectorPattern
    public var action: PolicyAction
    /// Secret data may travel only over the trusted bearer (SMS); the data plane never sends it.
    public var secret: Bool

    public init(_ pattern: SelectorPattern, _ action: PolicyAction, secret: Bool = false) {
        self.pattern = pattern
        self.action = action
        self.secret = secret
    }
}

public enum SPDError: Error, Equatable, Sendable { case full }

/// Ordered security policy database: the first matching rule wins; unmatched traffic gets `defaultAction`.
public struct SPD<let capacity: Int>: Sendable {
    private var rules: InlineArray<capacity, SPDRule>
    public private(set) var count = 0
    public var defaultAction: PolicyAction

    public init(defaultAction: PolicyAction = .discard) {
        self.defaultAction = defaultAction
        rules = InlineArray(repeating: SPDRule(SelectorPattern(remote: .anyV4, prefix: 0), .discard))
    }

    public mutating func append(_ rule: SPDRule) throws(SPDError) {
        guard count < capacity else { throw .full }
        rules[count] = rule
        count += 1
    }

    public mutating func removeAll() { count = 0 }

    public subscript(i: Int) -> SPDRule { rules[i] }

    /// Index of the first matching rule (nil = default) and the action to take.
    public func lookup(_ s: TrafficSelector) -> (rule: Int?, action: PolicyAction) {
        for i in 0..<count where rules[i].pattern.covers(s) {
            return (i, rules[i].secret ? .discard : rules[i].action)
        }
        return (nil, defaultAction)
    }
}
