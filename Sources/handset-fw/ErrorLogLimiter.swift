import BearerDriver

/// Which modem error lines get written: the first of each kind (operation and error, with its number), then
/// at most one per kind a minute, saying how many were left out meanwhile. A modem that answers ERROR to every
/// poll would otherwise fill the log; counting goes on regardless (FirmwareStats.modemErrors). Fixed table:
/// when full, the kind logged longest ago makes room, so at worst a kind is logged again early.
struct ErrorLogLimiter {
    static let kinds = 16
    static let intervalMs: UInt64 = 60_000

    struct Kind: Equatable {
        /// The operation's StaticString, compared by address: each call site names its own.
        var what: UInt = 0
        var code: Int32 = -1
        var number: Int32 = 0
    }

    private struct Entry {
        var kind = Kind()
        var loggedMs: UInt64 = 0
        var left: UInt32 = 0
    }

    private var entries = InlineArray<16, Entry>(repeating: Entry())
    private(set) var linesLeftOut: UInt64 = 0

    /// nil: leave this one out. Otherwise write it, adding how many of its kind were left out before it.
    mutating func admit(_ what: StaticString, _ e: ATError, nowMs: UInt64) -> UInt32? {
        let kind = Self.kind(what, e)
        var room = 0  // an unused entry, else the one logged longest ago
        for i in 0..<Self.kinds {
            let entry = entries[i]
            if entry.kind == kind {
                if nowMs &- entry.loggedMs < Self.intervalMs {
                    entries[i].left &+= 1
                    linesLeftOut &+= 1
                    return nil
                }
                entries[i].loggedMs = nowMs
                entries[i].left = 0
                return entry.left
            }
            let unused = entry.kind.code < 0, roomUnused = entries[room].kind.code < 0
            if (unused && !roomUnused) || (unused == roomUnused && entry.loggedMs < entries[room].loggedMs) { room = i }
        }
        entries[room] = Entry(kind: kind, loggedMs: nowMs, left: 0)
        return 0
    }

    static func kind(_ what: StaticString, _ e: ATError) -> Kind {
        let site = UInt(bitPattern: what.utf8Start)
        switch e {
        case .error: return Kind(what: site, code: 0)
        case .cme(let n): return Kind(what: site, code: 1, number: Int32(truncatingIfNeeded: n))
        case .cms(let n): return Kind(what: site, code: 2, number: Int32(truncatingIfNeeded: n))
        case .noCarrier: return Kind(what: site, code: 3)
        case .busy: return Kind(what: site, code: 4)
        case .noAnswer: return Kind(what: site, code: 5)
        case .noDialtone: return Kind(what: site, code: 6)
        case .sendFailed: return Kind(what: site, code: 7)
        case .timeout: return Kind(what: site, code: 8)
        case .rebooted: return Kind(what: site, code: 9)
        case .commandInvalid: return Kind(what: site, code: 10)
        case .responseOverflow: return Kind(what: site, code: 11)
        case .malformedResponse: return Kind(what: site, code: 12)
        case .unsupported: return Kind(what: site, code: 13)
        case .invalidArgument: return Kind(what: site, code: 14)
        case .socketError(let n): return Kind(what: site, code: 15, number: Int32(truncatingIfNeeded: n))
        case .noSuchSocket: return Kind(what: site, code: 16)
        case .transport(let s): return Kind(what: site, code: 17, number: s.errno)
        }
    }
}
