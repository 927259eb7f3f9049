/// A whole message handed over by the reassembler; its payload is in the caller's buffer.
public struct SMSReassembled: Sendable {
    public var count: Int
    public var originator: SMSAddress
    public var ports: SMSPorts?
    public var alphabet: SMSAlphabet
    /// nil when the message carried no concatenation IE.
    public var reference: UInt16?
    public var parts: UInt8
}

public enum SMSReassemblyResult: Sendable {
    case complete(SMSReassembled)
    /// Stored; more parts to come.
    case pending
    /// This part was already held; nothing changed but the counter.
    case duplicate
}

public enum SMSReassemblyError: Error, Equatable, Sendable {
    /// More parts than `maxParts`, or more than 64.
    case tooManyParts
    /// The caller's buffer cannot hold the completed message. The part was not stored.
    case bufferTooSmall
    /// Not a message a handset receives (SMS-SUBMIT or a status report).
    case notADeliver
}

public struct SMSReassemblyCounters: Sendable, Equatable {
    public var stored = 0
    public var completed = 0
    public var duplicates = 0
    public var timedOut = 0
    /// Incomplete messages dropped to make room for a new one.
    public var evicted = 0
    public var rejected = 0
}

/// Joins concatenated SMS parts (TS 23.040 §9.2.3.24.1) in `slots` fixed slots of `maxParts` parts each.
/// A message is keyed by originator, reference, part count and ports. Parts may arrive in any order and
/// more than once. `now` is the caller's monotonic clock, in any unit `timeout` uses.
///
/// Each part may carry a caller's `tag` (its storage index in the module, or -1). Every tag of a part accepted
/// without an error comes back through `released` exactly once: when its message completes, when it turns out
/// a duplicate, or when its message times out or is evicted. So a caller that deletes released tags never
/// leaves a part in storage.
public struct SMSReassembler<let slots: Int, let maxParts: Int> {
    struct Slot {
        var used = false
        var originator = SMSAddress()
        var reference: UInt16 = 0
        var total: UInt8 = 0
        var ports: SMSPorts?
        var alphabet: SMSAlphabet = .data8
        var firstSeen: UInt64 = 0
        var received: UInt64 = 0
        var tags = InlineArray<maxParts, Int>(repeating: -1)
        var lengths = InlineArray<maxParts, UInt8>(repeating: 0)
        var parts = InlineArray<maxParts, InlineArray<160, UInt8>>(repeating: InlineArray(repeating: 0))

        func matches(_ m: borrowing SMSMessage, _ c: SMSConcat) -> Bool {
            guard used, reference == c.reference, total == c.total, ports == m.header.ports else { return false }
            return originator.sameAs(m.address)
        }

        var bytes: Int {
            var n = 0
            for k in 0..<Int(total) where received & (1 << UInt64(k)) != 0 { n += Int(lengths[k]) }
            return n
        }
    }

    var table: InlineArray<slots, Slot>
    public let timeout: UInt64
    public private(set) var counters = SMSReassemblyCounters()

    public init(timeout: UInt64) {
        precondition(slots > 0 && maxParts > 0 && maxParts <= 64, "reassembler: 1...64 parts, at least one slot")
        self.timeout = timeout
        table = InlineArray(repeating: Slot())
    }

    /// Messages waiting for parts.
    public var pending: Int {
        var n = 0
        for i in 0..<slots where table[i].used { n += 1 }
        return n
    }

    /// Drops messages older than `timeout`, handing their parts' tags to `released`; returns how many.
    @discardableResult
    public mutating func expire(now: UInt64, released: (Int) -> Void = { _ in }) -> Int {
        var n = 0
        for i in 0..<slots where table[i].used && now &- table[i].firstSeen >= timeout {
            free(slot: i, released: released)
            n += 1
        }
        counters.timedOut += n
        return n
    }

    /// Takes one decoded SMS-DELIVER. A single-part message, or the part that completes one, is copied
    /// into `out` whole and returned as `.complete`. Tags of parts this call lets go (the completed message's,
    /// a duplicate's, expired or evicted messages') go to `released`; on a throw `tag` is not taken.
    public mutating func accept(_ m: borrowing SMSMessage, now: UInt64, tag: Int = -1, into out: UnsafeMutableRawBufferPointer,
                                released: (Int) -> Void = { _ in }) throws(SMSReassemblyError) -> SMSReassemblyResult
    {
        guard m.type == .deliver else {
            counters.rejected += 1
            throw .notADeliver
        }
        expire(now: now, released: released)
        // No concat IE, or one that says 1 of 1: nothing to wait for, and no slot taken.
        guard let c = m.header.concat, c.total > 1 else {
            guard m.payloadCount <= out.count else {
                counters.rejected += 1
                throw .bufferTooSmall
            }
            for k in 0..<m.payloadCount { out[k] = m[payload: k] }
            counters.completed += 1
            if tag >= 0 { released(tag) }
            return .complete(SMSReassembled(count: m.payloadCount, originator: m.address, ports: m.header.ports,
                                            alphabet: m.alphabet, reference: m.header.concat?.reference, parts: 1))
        }
        guard Int(c.total) <= maxParts else {
            counters.rejected += 1
            throw .tooManyParts
        }
        let seq = Int(c.sequence) - 1
        let bit: UInt64 = 1 << UInt64(seq)
        let full: UInt64 = c.total == 64 ? ~0 : (1 << UInt64(c.total)) - 1

        var s = -1
        for i in 0..<slots where table[i].matches(m, c) { s = i; break }
        if s >= 0 {
            if table[s].received & bit != 0 {
                counters.duplicates += 1
                // The held part read again (a storage listing) stays held; another copy goes.
                if tag >= 0 && tag != table[s].tags[seq] { released(tag) }
                return .duplicate
            }
            if table[s].received | bit == full {
                let size = table[s].bytes + m.payloadCount
                guard size <= out.count else {
                    counters.rejected += 1
                    throw .bufferTooSmall
                }
                store(m, seq: seq, tag: tag, in: s)
                return .complete(deliver(slot: s, size: size, into: out, released: released))
            }
        } else {
            s = freeSlot(released: released)
            start(m, c, now: now, in: s)
        }
        store(m, seq: seq, tag: tag, in: s)
        counters.stored += 1
        return .pending
    }

    private mutating func freeSlot(released: (Int) -> Void) -> Int {
        var oldest = 0
        for i in 0..<slots {
            if !table[i].used { return i }
            if table[i].firstSeen < table[oldest].firstSeen { oldest = i }
        }
        counters.evicted += 1
        free(slot: oldest, released: released)
        return oldest
    }

    /// Empties a slot, handing each held part's tag back.
    private mutating func free(slot s: Int, released: (Int) -> Void) {
        for k in 0..<Int(table[s].total) where table[s].received & (1 << UInt64(k)) != 0 && table[s].tags[k] >= 0 {
            released(table[s].tags[k])
            table[s].tags[k] = -1
        }
        table[s].used = false
    }

    private mutating func start(_ m: borrowing SMSMessage, _ c: SMSConcat, now: UInt64, in s: Int) {
        table[s].used = true
        table[s].originator = m.address
        table[s].reference = c.reference
        table[s].total = c.total
        table[s].ports = m.header.ports
        table[s].alphabet = m.alphabet
        table[s].firstSeen = now
        table[s].received = 0
    }

    private mutating func store(_ m: borrowing SMSMessage, seq: Int, tag: Int, in s: Int) {
        for k in 0..<m.payloadCount { table[s].parts[seq][k] = m[payload: k] }
        table[s].lengths[seq] = UInt8(m.payloadCount)
        table[s].tags[seq] = tag
        table[s].received |= 1 << UInt64(seq)
    }

    private mutating func deliver(slot s: Int, size: Int, into out: UnsafeMutableRawBufferPointer,
                                  released: (Int) -> Void) -> SMSReassembled {
        var o = 0
        for p in 0..<Int(table[s].total) {
            for k in 0..<Int(table[s].lengths[p]) { out[o + k] = table[s].parts[p][k] }
            o += Int(table[s].lengths[p])
        }
        counters.completed += 1
        let whole = SMSReassembled(count: size, originator: table[s].originator, ports: table[s].ports,
                                   alphabet: table[s].alphabet, reference: table[s].reference, parts: table[s].total)
        free(slot: s, released: released)
        return whole
    }
}
