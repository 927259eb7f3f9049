// The SIM PIN (TS 27.007 §8.3 +CPIN) and the module's retry counter (ModemDialect.pinCounter).
//
// Three wrong PINs lock the SIM behind its PUK, so a PIN is entered only when the module says more than one try
// is left, or cannot say at all (no counter command): with the firmware never entering a refused PIN twice
// (Firmware+SIM.swift), an unknown counter costs at most one try per PIN setting.

/// What `unlockSIM` found or did.
public enum SIMUnlockResult: Equatable, Sendable {
    /// The SIM asked for nothing (`+CPIN: READY`).
    case ready
    /// The PIN was entered and accepted; the SIM is ready.
    case unlocked
    /// The PIN was entered and refused (`+CME ERROR: 16` incorrect password); tries left afterwards, if known.
    case wrongPIN(triesLeft: Int?)
    /// The SIM asks for its PIN and none was given.
    case pinNeeded(triesLeft: Int?)
    /// The SIM asks for its PIN and only one try (or none) is left: not entered.
    case lastTryKept(triesLeft: Int)
    /// The SIM asks for its PUK (three wrong PINs): nothing is entered.
    case pukRequired
    /// No SIM, a PIN2/PUK2 or phone lock, or an answer not understood.
    case unusable(SIMState)
}

/// TS 27.007 §9.2.1 error numbers for the SIM.
public enum SIMError {
    public static let notInserted = 10
    public static let pinRequired = 11
    public static let pukRequired = 12
    public static let failure = 13
    public static let busy = 14
    public static let wrong = 15
    public static let incorrectPassword = 16
}

extension ATDriver {
    /// PIN1 tries left as the module's counter command reports them; nil when the dialect has none that answers.
    public func simPINTriesLeft() throws(ATError) -> Int? {
        let q = dialect.pinCounter
        let r: ATResponse
        do throws(ATError) {
            r = try engine.run(ATCommand(q.command), timeoutMs: 5000)
        } catch {
            switch error {
            case .transport, .rebooted: throw error
            default: return nil  // the module does not know the command
            }
        }
        var from = 0
        while let i = r.index(of: q.answer, from: from), let line = r.line(i) {
            var f = ATFields(line, after: q.answer)
            from = i + 1
            if !q.facility.isEmptyString {
                guard let name = f.string(), name.equals(q.facility) else { continue }
                f.skip(q.field - 1)
            } else {
                f.skip(q.field)
            }
            if let n = f.int(), n >= 0 { return n }
        }
        return nil
    }

    /// Reads the SIM state and, when it asks for its PIN and `pin` is given, enters it, unless the counter says
    /// one try (or none) is left. After an accepted PIN waits (up to `readyTimeoutMs`) for the SIM to become
    /// ready; the `+CPIN: READY` it announces is not a module reboot. `pin` must be 4 to 8 digits.
    /// The blocking form of `SIMUnlock` (whose steps an event loop takes one at a time, URCs between them).
    public func unlockSIM(pin: UnsafeRawBufferPointer?, readyTimeoutMs: Int = 10_000) throws(ATError) -> SIMUnlockResult {
        var unlock = SIMUnlock(nowMs: engine.transport.nowMs(), readyTimeoutMs: readyTimeoutMs)
        while true {
            if let result = try unlock.step(self, pin: pin) {
                if result == .unlocked {
                    // The SIM's own "+CPIN: READY" (and SMS/phonebook banners) follow an accepted PIN: not a reboot.
                    try engine.drain(timeoutMs: SIMUnlock.bannerQuietMs)
                    _ = engine.takeRebootIndication()
                }
                return result
            }
            let wait = unlock.waitMs(nowMs: engine.transport.nowMs())
            if unlock.entering {
                // URCs meanwhile stay queued, as in `run`.
                _ = try engine.pump(until: engine.transport.nowMs() + UInt64(wait)) { $0.commandAnswered }
            } else if wait > 0 {
                engine.transport.pause(ms: wait)
            }
        }
    }
}

/// `unlockSIM` one step at a time, for a loop that takes URCs between steps: each `step` runs at most one short
/// command (`AT+CPIN?`, the counter), or starts `AT+CPIN=<pin>` and later takes its answer without waiting for it,
/// and nil means "not finished: step again". A SIM still busy (`+CME ERROR: 14`, or its ready banner cutting an
/// answer short) is asked again every 200 ms until the ready timeout, without waiting in between. The PIN is not
/// kept: each step is given it again. Ready banners seen once the PIN is entered (`pinEntered`) are the SIM's, not a
/// module reboot: the owner ignores them until `bannerQuietMs` after the end (ATDriver's `unlockSIM` drains them).
public struct SIMUnlock: Equatable, Sendable {
    /// After an accepted PIN, the SIM's banners come this long at most after it reports ready.
    public static let bannerQuietMs = 200
    static let retryMs: UInt64 = 200
    static let pinTimeoutMs = 15_000

    enum Phase: Equatable, Sendable {
        /// `AT+CPIN?` before anything is entered.
        case askState
        /// The counter, then the PIN (or a result without entering one).
        case askTries
        /// `AT+CPIN=<pin>` in flight; `tries` as the counter said before.
        case entering(tries: Int?)
        /// The PIN was answered OK (`lost` nil) or its answer was lost (`lost`: what the SIM says now tells).
        case settling(tries: Int?, lost: ATError?)
    }

    var phase = Phase.askState
    let readyTimeoutMs: Int
    /// The SIM's busy answers are retried until then (reset when the PIN is answered).
    var deadlineMs: UInt64
    /// The next `AT+CPIN?` is not asked before then.
    var nextMs: UInt64 = 0

    public init(nowMs: UInt64, readyTimeoutMs: Int = 10_000) {
        self.readyTimeoutMs = readyTimeoutMs
        deadlineMs = nowMs + UInt64(max(readyTimeoutMs, 0))
    }

    /// True while `AT+CPIN=<pin>` is in flight: the engine's answer (read by the owner's polling) moves it on.
    public var entering: Bool { if case .entering = phase { true } else { false } }

    /// The PIN has been entered: ready banners from now on are the SIM's answer to it.
    public var pinEntered: Bool {
        switch phase {
        case .entering, .settling: true
        case .askState, .askTries: false
        }
    }

    /// How long nothing is to be done (the next retry of a busy SIM), in ms; 0 when a step is due.
    public func waitMs(nowMs: UInt64) -> Int {
        switch phase {
        case .entering: return 50
        case .askState, .settling: return nowMs >= nextMs ? 0 : Int(nextMs - nowMs)
        case .askTries: return 0
        }
    }

    /// One step; the result once known. Throws what `unlockSIM` throws.
    public mutating func step<T>(_ d: ATDriver<T>, pin: UnsafeRawBufferPointer?) throws(ATError) -> SIMUnlockResult? {
        let now = d.engine.transport.nowMs()
        switch phase {
        case .askState:
            guard now >= nextMs else { return nil }
            guard let state = try settledState(d) else { return nil }
            switch state {
            case .ready: return .ready
            case .pukRequired: return .pukRequired
            case .pinRequired:
                phase = .askTries
                return nil
            default: return .unusable(state)
            }
        case .askTries:
            let tries = try d.simPINTriesLeft()
            guard let pin else { return .pinNeeded(triesLeft: tries) }
            guard pin.count >= 4, pin.count <= 8, pin.allSatisfy(ASCII.isDigit) else { throw .invalidArgument }
            if let tries, tries <= 1 { return .lastTryKept(triesLeft: tries) }
            var c = ATCommand("AT+CPIN=")
            c.quoted(pin)
            try d.engine.start(c, timeoutMs: Self.pinTimeoutMs)
            phase = .entering(tries: tries)
            return nil
        case .entering(let tries):
            guard d.engine.commandReady else { return nil }
            var lost: ATError?
            do throws(ATError) {
                guard try d.engine.advance() != nil else { return nil }
            } catch {
                switch error {
                case .cme(SIMError.incorrectPassword), .cme(SIMError.pukRequired):
                    let after = try? d.simPINTriesLeft()
                    if case .pukRequired? = try? d.simState() { return .wrongPIN(triesLeft: 0) }
                    return .wrongPIN(triesLeft: after ?? tries.map { $0 - 1 })
                case .transport:
                    throw error
                default:
                    // The answer was lost (timeout, a reboot cut it short): what the SIM says now tells what
                    // happened, so a wrong PIN whose answer was lost is not entered again as if never tried.
                    lost = error
                }
            }
            phase = .settling(tries: tries, lost: lost)
            deadlineMs = d.engine.transport.nowMs() + UInt64(max(readyTimeoutMs, 0))
            nextMs = 0
            return nil
        case .settling(let tries, let lost):
            guard now >= nextMs else { return nil }
            let state: SIMState
            if let lost {
                do throws(ATError) {
                    guard let s = try settledState(d) else { return nil }
                    state = s
                } catch {
                    state = .other
                }
                if state == .ready { return .unlocked }
                if let before = tries, let after = try? d.simPINTriesLeft(), after < before {
                    return .wrongPIN(triesLeft: after)
                }
                throw lost
            }
            guard let s = try settledState(d) else { return nil }
            return s == .ready ? .unlocked : .unusable(s)
        }
    }

    /// `AT+CPIN?`; nil while the SIM is busy and the deadline has not passed (asked again in 200 ms).
    private mutating func settledState<T>(_ d: ATDriver<T>) throws(ATError) -> SIMState? {
        do throws(ATError) {
            return try d.simState()
        } catch {
            let retry = error == .rebooted || error == .cme(SIMError.busy)
            guard retry, d.engine.transport.nowMs() < deadlineMs else { throw error }
            nextMs = d.engine.transport.nowMs() + Self.retryMs
            return nil
        }
    }
}
