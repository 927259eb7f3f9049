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
    public func unlockSIM(pin: UnsafeRawBufferPointer?, readyTimeoutMs: Int = 10_000) throws(ATError) -> SIMUnlockResult {
        let state = try simStateSettled(timeoutMs: readyTimeoutMs)
        switch state {
        case .ready: return .ready
        case .pukRequired: return .pukRequired
        case .pinRequired: break
        default: return .unusable(state)
        }
        let tries = try simPINTriesLeft()
        guard let pin else { return .pinNeeded(triesLeft: tries) }
        guard pin.count >= 4, pin.count <= 8, pin.allSatisfy(ASCII.isDigit) else {
            throw .invalidArgument
        }
        if let tries, tries <= 1 { return .lastTryKept(triesLeft: tries) }
        var c = ATCommand("AT+CPIN=")
        c.quoted(pin)
        do throws(ATError) {
            try engine.run(c, timeoutMs: 15_000)
        } catch {
            switch error {
            case .cme(SIMError.incorrectPassword), .cme(SIMError.pukRequired):
                let after = try? simPINTriesLeft()
                if case .pukRequired? = try? simState() { return .wrongPIN(triesLeft: 0) }
                return .wrongPIN(triesLeft: after ?? tries.map { $0 - 1 })
            case .transport:
                throw error
            default:
                // The answer was lost (timeout, a reboot cut it short): what the SIM says now tells what happened,
                // so a wrong PIN whose answer was lost is not entered again as if never tried.
                if let now = try? simStateSettled(timeoutMs: readyTimeoutMs), now == .ready {
                    try engine.drain(timeoutMs: 200)
                    _ = engine.takeRebootIndication()
                    return .unlocked
                }
                if let before = tries, let after = try? simPINTriesLeft(), after < before {
                    return .wrongPIN(triesLeft: after)
                }
                throw error
            }
        }
        let now = try simStateSettled(timeoutMs: readyTimeoutMs)
        // The SIM's own "+CPIN: READY" (and SMS/phonebook banners) follow an accepted PIN: not a reboot.
        try engine.drain(timeoutMs: 200)
        _ = engine.takeRebootIndication()
        return now == .ready ? .unlocked : .unusable(now)
    }

    /// `AT+CPIN?`, asked again while the SIM is busy (`+CME ERROR: 14`, SIMCom right after a PIN) or while its
    /// ready indication cuts the answer short, until `timeoutMs`.
    func simStateSettled(timeoutMs: Int) throws(ATError) -> SIMState {
        let deadline = engine.transport.nowMs() + UInt64(max(timeoutMs, 0))
        while true {
            do throws(ATError) {
                return try simState()
            } catch {
                let retry = error == .rebooted || error == .cme(SIMError.busy)
                guard retry, engine.transport.nowMs() < deadline else { throw error }
                engine.transport.pause(ms: 200)
            }
        }
    }
}
