import BearerDriver
import CHandsetShim

/// A GPIO line as board profiles name it: `gpiochipN:LINE` (the Linux GPIO character device `/dev/gpiochipN`).
struct GPIOLineName: Equatable {
    var chip: UInt32
    var line: UInt32

    /// Bytewise: `gpiochip`, 1–3 digits, `:`, 1–5 digits. Anything else is nil.
    static func parse(_ b: UnsafeRawBufferPointer) -> GPIOLineName? {
        let prefix: StaticString = "gpiochip"
        let p = prefix.utf8CodeUnitCount
        guard b.count > p + 2, bytesEqual(UnsafeRawBufferPointer(rebasing: b[0..<p]), prefix) else { return nil }
        var colon = -1
        for i in p..<b.count where b[i] == 0x3A && colon < 0 { colon = i }
        guard colon > p, colon - p <= 3, b.count - colon - 1 <= 5,
              let chip = parseUInt(UnsafeRawBufferPointer(rebasing: b[p..<colon]), max: 999),
              let line = parseUInt(UnsafeRawBufferPointer(rebasing: b[(colon + 1)...]), max: 65535) else { return nil }
        return GPIOLineName(chip: UInt32(chip), line: UInt32(line))
    }

    /// Calls `body` with "/dev/gpiochipN", NUL-terminated, in fixed storage.
    func withChipPath<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        var path = InlineArray<24, CChar>(repeating: 0)
        let stem: StaticString = "/dev/gpiochip"
        var n = 0
        for i in 0..<stem.utf8CodeUnitCount { path[n] = CChar(bitPattern: stem.utf8Start[i]); n += 1 }
        DecimalText.write(chip) { path[n] = CChar(bitPattern: $0); n += 1 }  // chip ≤ 999 (GPIOLineName.parse)
        return withUnsafeBytes(of: &path) { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }
}

/// What the kernel said, as -errno from the shim.
enum GPIOError: Error, Equatable {
    /// The chip could not be opened or the line could not be requested (ENOENT: no such chip, ENOTTY: not a GPIO
    /// chip, EINVAL: no such line, EBUSY: another consumer holds it, EACCES: permissions).
    case request(errno: Int32)
    case set(errno: Int32)
}

/// One requested output line. Copyable so it can sit in fixed storage; `ModemPower` owns the release.
struct GPIOOutput {
    let fd: Int32

    static func request(chipPath: UnsafePointer<CChar>, line: UInt32, asserted: Bool,
                        activeLow: Bool) throws(GPIOError) -> GPIOOutput {
        let fd = hs_gpio_request_output(chipPath, line, asserted ? 1 : 0, activeLow ? 1 : 0)
        guard fd >= 0 else { throw .request(errno: -fd) }
        return GPIOOutput(fd: fd)
    }

    func set(_ asserted: Bool) throws(GPIOError) {
        let rc = hs_gpio_set(fd, asserted ? 1 : 0)
        guard rc == 0 else { throw .set(errno: -rc) }
    }

    func release() { _ = hs_gpio_release(fd) }
}

/// Wiring and timing of the module's power key and reset (docs/firmware.md, "Modem power").
struct ModemPowerConfig: Equatable {
    var powerKey: GPIOLineName?
    var reset: GPIOLineName?
    /// Asserted = physical low (a GPIO wired straight to the active-low pin). Default: asserted = high, as with the
    /// usual NPN transistor between the GPIO and PWRKEY / RESET_N.
    var activeLow = false
    /// Power-key hold. SIM7000 HD V1.04 and Quectel M95 HD V1.0 ask for more than 1 s when STATUS is not watched;
    /// Quectel EC21 needs >= 100 ms, a SIMCom LTE module Ton 100 ms min / 500 ms typ. 1 s covers all of them.
    var powerKeyMs: UInt32 = 1000
    /// Reset hold: 100–450 ms on SIMCom/Quectel LTE modules (a SIMCom-type module's manual: "100-450ms"); BG77
    /// multiplexes reset onto PWRKEY and needs 2–3.8 s, so it is configurable.
    var resetMs: UInt32 = 300
    /// Time to let the module boot after a pulse before the next AT probe (UART ready: typ. 6 s, USB 10 s).
    var bootMs: UInt32 = 10_000
    /// Consecutive failed bring-ups before a reset pulse.
    var recoveryAfter = 3

    var anyLine: Bool { powerKey != nil || reset != nil }
}

enum PowerAction: Equatable { case none, powerKey, reset }

/// When to press which line. Pure, so the policy is tested without hardware:
/// 1. The first failed bring-up (since start or since the last success) with a silent modem presses the power key:
///    the module is most likely off.
/// 2. Every `recoveryAfter`-th consecutive failure pulses reset when a reset line is wired.
/// 3. A silent modem right after a reset pulse gets the power key (the reset did not bring it back: it is off).
/// The power key is pressed only for a silent modem: on a running module it is an off switch.
struct PowerRecovery: Equatable {
    var failures = 0
    var last = PowerAction.none

    mutating func afterFailedBringUp(modemSilent: Bool, _ c: ModemPowerConfig) -> PowerAction {
        failures += 1
        let canKey = c.powerKey != nil && modemSilent
        let action: PowerAction
        if canKey && (failures == 1 || last == .reset) { action = .powerKey }
        else if c.recoveryAfter > 0 && failures % c.recoveryAfter == 0 { action = c.reset != nil ? .reset : canKey ? .powerKey : .none }
        else { action = .none }
        last = action
        return action
    }

    mutating func afterSuccess() { self = PowerRecovery() }
}

/// Which line failed.
enum ModemPowerError: Error, Equatable {
    case powerKey(GPIOError)
    case reset(GPIOError)
}

/// The power key and reset lines, held (deasserted) for the firmware's lifetime once they could be requested.
/// A line that cannot be requested is reported once; the firmware runs on without it.
struct ModemPower: ~Copyable {
    let config: ModemPowerConfig
    var recovery = PowerRecovery()
    private var powerKeyFD: Int32 = -1
    private var resetFD: Int32 = -1
    private(set) var pulses = 0
    /// Errors seen and errors printed (each line's first one only).
    private(set) var errors = 0
    private(set) var reported = 0
    private var keyReported = false
    private var resetReported = false

    init(config: ModemPowerConfig) { self.config = config }

    deinit {
        if powerKeyFD >= 0 { _ = hs_gpio_release(powerKeyFD) }
        if resetFD >= 0 { _ = hs_gpio_release(resetFD) }
    }

    var holdsPowerKey: Bool { powerKeyFD >= 0 }
    var holdsReset: Bool { resetFD >= 0 }

    /// Requests every configured line not yet held, deasserted. Logs each line's first failure.
    mutating func open() -> ModemPowerError? {
        let key = openLine(powerKey: true)
        let reset = openLine(powerKey: false)
        return key ?? reset
    }

    /// Asserts the line for its configured time, then deasserts it. Blocks for that time. A line that is not
    /// configured is a no-op; one that cannot be requested or driven throws.
    mutating func pulse(_ action: PowerAction) throws(ModemPowerError) {
        guard action != .none else { return }
        let key = action == .powerKey
        guard (key ? config.powerKey : config.reset) != nil else { return }
        if let e = openLine(powerKey: key) { throw e }
        let line = GPIOOutput(fd: key ? powerKeyFD : resetFD)
        do throws(GPIOError) {
            try line.set(true)
            hs_sleep_ms(key ? config.powerKeyMs : config.resetMs)
            try line.set(false)
        } catch {
            _ = try? line.set(false)
            throw note(key ? .powerKey(error) : .reset(error))
        }
        pulses += 1
    }

    private mutating func openLine(powerKey key: Bool) -> ModemPowerError? {
        guard let name = key ? config.powerKey : config.reset, (key ? powerKeyFD : resetFD) < 0 else { return nil }
        do throws(GPIOError) {
            let fd = try Self.request(name, activeLow: config.activeLow).fd
            if key { powerKeyFD = fd } else { resetFD = fd }
            return nil
        } catch {
            return note(key ? .powerKey(error) : .reset(error))
        }
    }

    private static func request(_ name: GPIOLineName, activeLow: Bool) throws(GPIOError) -> GPIOOutput {
        var failure = GPIOError.request(errno: 0)
        let out = name.withChipPath { path -> GPIOOutput? in
            do throws(GPIOError) {
                return try GPIOOutput.request(chipPath: path, line: name.line, asserted: false, activeLow: activeLow)
            } catch {
                failure = error
                return nil
            }
        }
        guard let out else { throw failure }
        return out
    }

    private mutating func note(_ e: ModemPowerError) -> ModemPowerError {
        errors += 1
        switch e {
        case .powerKey(let g) where !keyReported:
            keyReported = true; reported += 1
            Self.describe(LogLine("fw: power key gpio unavailable ("), g).append("); running without it").emit()
        case .reset(let g) where !resetReported:
            resetReported = true; reported += 1
            Self.describe(LogLine("fw: reset gpio unavailable ("), g).append("); running without it").emit()
        default: break
        }
        return e
    }

    private static func describe(_ line: LogLine, _ g: GPIOError) -> LogLine {
        switch g {
        case .request(let e): return line.append("request: ").append(errno: e)
        case .set(let e): return line.append("set: ").append(errno: e)
        }
    }
}
