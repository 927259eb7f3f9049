import BearerDriver
import CHandsetShim
import HandsetCore

// The SIM PIN at bring-up (docs/firmware.md, "SIM PIN"). Three wrong PINs lock a SIM behind its PUK, so:
// a PIN is entered only while the module's counter says more than one try is left (ATDriver+SIM.swift); a PIN the
// SIM refused is never entered again until the PIN setting changes: the refusal is kept in STATE_DIR/sim-pin-refused
// (written atomically), keyed on a salted hash of the setting, so neither a restart nor a reboot tries it again;
// a PUK is never entered. Each case is logged once, and shown by `handset-fw status` (`sim STATE tries-left N`).

/// Where the SIM stands, as `handset-fw status` shows it.
enum SIMStatus: Equatable {
    case unknown, ready, unlocked, pinNeeded, wrongPIN, lastTryKept, puk, unusable

    var name: StaticString {
        switch self {
        case .unknown: "unknown"
        case .ready: "ready"
        case .unlocked: "unlocked"
        case .pinNeeded: "pin-needed"
        case .wrongPIN: "wrong-pin"
        case .lastTryKept: "last-try-kept"
        case .puk: "puk-needed"
        case .unusable: "unusable"
        }
    }

    /// Bring-up may go on.
    var usable: Bool { self == .ready || self == .unlocked }
}

struct SIMReport {
    var status = SIMStatus.unknown
    /// PIN tries left as the module last said; -1: not known.
    var triesLeft = -1
    var pinsEntered: UInt64 = 0
    /// Bring-ups where a configured PIN was not entered (refused before, or one try left).
    var pinsWithheld: UInt64 = 0

    /// The longest `sim` line COUNTERS can show (the longest state, the most digits), for its worst case.
    static func longestStatusLine() -> LogLine {
        LogLine("sim ").append(SIMStatus.lastTryKept.name).append(" tries-left ").append(Int.max)
    }
}

/// The record of a PIN the SIM refused: "HSPIN1", a random salt, HMAC-SHA-256(salt, PIN). The PIN itself is never
/// stored; with few digits it could be found from the record by trying them all, so the record is kept like the
/// PIN (0600, in the 0700 state_dir).
enum SIMPINRefusal {
    static let name: StaticString = "sim-pin-refused"
    static let magic: StaticString = "HSPIN1"
    static let saltLength = 16
    static let length = 6 + 16 + 32
    /// `name` as a C string (a literal's storage ends with a NUL).
    static var cName: UnsafePointer<CChar> { UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self) }

    /// True when the record exists and was made for `pin`.
    static func matches(_ pin: UnsafeRawBufferPointer, stateDir: UnsafePointer<CChar>) -> Bool {
        var path = InlineArray<256, CChar>(repeating: 0)
        guard joined(stateDir, into: &path) else { return false }
        var record = InlineArray<64, UInt8>(repeating: 0)
        let n = withUnsafeMutableBytes(of: &record) { r in
            withUnsafeBytes(of: &path) { p in
                Int(hs_file_read(p.baseAddress!.assumingMemoryBound(to: CChar.self), r.baseAddress!.assumingMemoryBound(to: UInt8.self), r.count))
            }
        }
        guard n == length else { return false }
        return withUnsafeBytes(of: &record) { r -> Bool in
            for i in 0..<magic.utf8CodeUnitCount where r[i] != magic.utf8Start[i] { return false }
            let salt = UnsafeRawBufferPointer(rebasing: r[6..<(6 + saltLength)])
            var mac = InlineArray<32, UInt8>(repeating: 0)
            guard digest(salt: salt, pin: pin, into: &mac) else { return false }
            var diff: UInt8 = 0
            withUnsafeBytes(of: &mac) { m in for i in 0..<32 { diff |= m[i] ^ r[6 + saltLength + i] } }
            return diff == 0
        }
    }

    /// Writes the record for `pin` (temp file, fsync, rename, fsync of the directory). Returns 0 or -errno.
    static func record(_ pin: UnsafeRawBufferPointer, stateDir: UnsafePointer<CChar>, random: borrowing HandsetRandom) -> Int32 {
        var record = InlineArray<54, UInt8>(repeating: 0)
        return withUnsafeMutableBytes(of: &record) { r -> Int32 in
            for i in 0..<magic.utf8CodeUnitCount { r[i] = magic.utf8Start[i] }
            guard random.fill(UnsafeMutableRawBufferPointer(rebasing: r[6..<(6 + saltLength)])) else { return -5 }
            var mac = InlineArray<32, UInt8>(repeating: 0)
            guard digest(salt: UnsafeRawBufferPointer(rebasing: r[6..<(6 + saltLength)]), pin: pin, into: &mac) else { return -5 }
            withUnsafeBytes(of: &mac) { m in for i in 0..<32 { r[6 + saltLength + i] = m[i] } }
            return hs_file_replace_atomic(stateDir, cName,
                                          r.baseAddress!.assumingMemoryBound(to: UInt8.self), r.count)
        }
    }

    /// Forgets the record (the SIM took a PIN). Returns 0 or -errno.
    static func clear(stateDir: UnsafePointer<CChar>) -> Int32 {
        hs_file_remove(stateDir, cName)
    }

    private static func digest(salt: UnsafeRawBufferPointer, pin: UnsafeRawBufferPointer, into mac: inout InlineArray<32, UInt8>) -> Bool {
        withUnsafeMutableBytes(of: &mac) { m in
            hs_hmac_sha256(salt.baseAddress!.assumingMemoryBound(to: UInt8.self), salt.count,
                           pin.baseAddress!.assumingMemoryBound(to: UInt8.self), pin.count,
                           m.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
        }
    }

    private static func joined(_ dir: UnsafePointer<CChar>, into path: inout InlineArray<256, CChar>) -> Bool {
        var n = 0
        while dir[n] != 0 {
            guard n < 200 else { return false }
            path[n] = dir[n]
            n += 1
        }
        path[n] = 0x2F
        n += 1
        for i in 0..<name.utf8CodeUnitCount { path[n + i] = CChar(bitPattern: name.utf8Start[i]) }
        path[n + name.utf8CodeUnitCount] = 0
        return true
    }
}

/// Reads `sim_pin_file` into `config.sim.pin` (run only). Refuses a file that group or others may use, or that
/// belongs to neither root nor this user, with a message saying so; returns false then.
func loadSIMPINFile(_ config: inout FirmwareConfig) -> Bool {
    guard config.sim.fromFile else { return true }
    var file = config.sim.file
    var text = InlineArray<32, UInt8>(repeating: 0)
    var mode: UInt32 = 0
    var owner: UInt32 = 0
    let n = withUnsafeBytes(of: &file) { f in
        withUnsafeMutableBytes(of: &text) { t in
            Int(hs_file_read_private(f.baseAddress!.assumingMemoryBound(to: CChar.self), t.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     t.count, &mode, &owner))
        }
    }
    let path = withUnsafeBytes(of: &file) { LogLine("handset-fw: sim_pin_file ").append(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    if n == -1 /* EPERM */ && mode & 0o077 != 0 {
        path.append(" may be read or written by group or others (mode 0").append(octal: mode).append(")").emit()
        LogLine("handset-fw: a SIM PIN file must be its owner's alone: chmod 600 it").emit()  // two lines: LogLine holds 160
        return false
    }
    guard n >= 0 else {
        path.append(": ").append(errno: Int32(-n)).emit()
        return false
    }
    guard owner == 0 || owner == hs_effective_uid() else {
        path.append(" belongs to uid ").append(owner).append(", neither root nor this user").emit()
        return false
    }
    var end = n
    while end > 0 && (text[end - 1] == 0x0A || text[end - 1] == 0x0D || text[end - 1] == 0x20) { end -= 1 }
    let ok = withUnsafeBytes(of: &text) { t -> Bool in
        let pin = UnsafeRawBufferPointer(rebasing: t[0..<end])
        guard end < 32, SIMPINConfig.valid(pin) else { return false }
        config.sim.pin.fill { o in
            o.baseAddress!.copyMemory(from: pin.baseAddress!, byteCount: pin.count)
            return pin.count
        }
        return true
    }
    if !ok { path.append(": expected 4 to 8 digits (and a newline)").emit() }
    for i in 0..<32 { text[i] = 0 }
    return ok
}

extension Firmware {
    /// A SIM that stopped bring-up is asked again after this long.
    static let simRecheckMs: UInt64 = 60_000

    /// A PIN is configured and the SIM refused it before (the kept refusal matches it).
    func simPINRefusedBefore() -> Bool {
        var dir = config.stateDir
        return config.sim.pin.count > 0 && config.sim.pin.withBytes { p in
            withUnsafeBytes(of: &dir) { SIMPINRefusal.matches(p, stateDir: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        }
    }

    /// One step of the SIM at bring-up (after `synchronise`): its state, and the PIN entered if it asks for one
    /// and entering it is safe (`SIMUnlock`, one short command or the PIN's answer per step, so the loop takes
    /// URCs meanwhile). Nil while it goes on; a modem error is thrown: bring-up failed.
    func stepSIMUnlock(_ unlock: inout SIMUnlock, refusedBefore: Bool) throws(ATError) -> SIMUnlockResult? {
        let enter = config.sim.pin.count > 0 && !refusedBefore
        return try config.sim.pin.withBytes { p throws(ATError) in try unlock.step(driver, pin: enter ? p : nil) }
    }

    /// What the SIM said, recorded and logged (once per change). True when bring-up may go on; otherwise the SIM
    /// is asked again in a minute (someone may unblock it by hand, or change the SIM), without a power pulse.
    mutating func simUnlockFinished(_ result: SIMUnlockResult, refusedBefore: Bool) -> Bool {
        var dir = config.stateDir
        let pinGiven = config.sim.pin.count > 0
        let before = sim.status
        switch result {
        case .ready:
            sim.status = .ready
            if before != .ready && before != .unlocked && pinGiven { log("SIM ready (it asked for no PIN)") }
        case .unlocked:
            sim.pinsEntered &+= 1
            sim.status = .unlocked
            sim.triesLeft = -1
            log("SIM PIN accepted")
            _ = withUnsafeBytes(of: &dir) { SIMPINRefusal.clear(stateDir: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        case .wrongPIN(let left):
            sim.pinsEntered &+= 1
            sim.status = .wrongPIN
            sim.triesLeft = left ?? -1
            let rc = config.sim.pin.withBytes { p in
                withUnsafeBytes(of: &dir) { d in
                    SIMPINRefusal.record(p, stateDir: d.baseAddress!.assumingMemoryBound(to: CChar.self), random: kd.random)
                }
            }
            appendTries(LogLine("fw: SIM PIN wrong: the SIM refused it"), left).emit()
            if rc != 0 { LogLine("fw: could not keep the SIM PIN refusal in state_dir: ").append(errno: -rc).emit() }
            log("it is not entered again until sim_pin (or sim_pin_file) changes")
        case .pinNeeded(let left):
            sim.triesLeft = left ?? -1
            if refusedBefore {
                sim.pinsWithheld &+= 1
                sim.status = .wrongPIN
                if before != .wrongPIN {
                    appendTries(LogLine("fw: SIM PIN not entered: the SIM refused this PIN before"), left).emit()
                    log("it is not entered again until sim_pin (or sim_pin_file) changes")
                }
            } else {
                sim.status = .pinNeeded
                if before != .pinNeeded {
                    appendTries(LogLine("fw: the SIM asks for its PIN and none is configured (sim_pin, sim_pin_file)"), left).emit()
                }
            }
        case .lastTryKept(let left):
            sim.pinsWithheld &+= 1
            sim.status = .lastTryKept
            sim.triesLeft = left
            if before != .lastTryKept {
                appendTries(LogLine("fw: SIM PIN not entered: a wrong one now would lock the SIM (PUK)"), left).emit()
            }
        case .pukRequired:
            sim.status = .puk
            sim.triesLeft = 0
            if before != .puk { log("the SIM asks for its PUK (3 wrong PINs); the firmware never enters one: unblock it by hand") }
        case .unusable(let state):
            sim.status = .unusable
            if before != .unusable { LogLine("fw: SIM not usable: ").append(state).emit() }
        }
        return sim.status.usable
    }

    private func appendTries(_ line: LogLine, _ left: Int?) -> LogLine {
        guard let left else { return line.append(" (tries left unknown)") }
        return line.append(" (").append(left).append(left == 1 ? " try left)" : " tries left)")
    }

    /// Bring-up waits because of the SIM (PIN missing or refused, last try kept, PUK, no SIM).
    var simStopsBringUp: Bool {
        guard case .waiting = bringUp else { return false }
        return sim.status != .unknown && !sim.status.usable
    }

    /// `sim STATE tries-left N|unknown`, for COUNTERS (its longest: `SIMReport.longestStatusLine`).
    func simStatusLine() -> LogLine {
        let line = LogLine("sim ").append(sim.status.name).append(" tries-left ")
        return sim.triesLeft < 0 ? line.append("unknown") : line.append(sim.triesLeft)
    }
}

extension LogLine {
    func append(_ s: SIMState) -> LogLine {
        switch s {
        case .ready: append("ready")
        case .pinRequired: append("PIN required")
        case .pukRequired: append("PUK required")
        case .pin2Required: append("PIN2 required")
        case .puk2Required: append("PUK2 required")
        case .phoneLocked: append("phone locked to another SIM")
        case .notInserted: append("not inserted")
        case .other: append("state not understood")
        }
    }

    /// `v` in octal (file modes).
    func append(octal v: UInt32) -> LogLine {
        var line = self
        var started = false
        for shift in stride(from: 9, through: 0, by: -3) {
            let d = UInt8((v >> UInt32(shift)) & 7)
            if d != 0 || started || shift == 0 {
                line = line.append(d)
                started = true
            }
        }
        return line
    }
}
