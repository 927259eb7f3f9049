import CHandsetShim
import Testing
@testable import handset_fw

/// The GPIO side of modem power. This machine's kernel has no GPIO chips (CONFIG_GPIOLIB unset, no gpio-sim), so
/// what is tested against the kernel is the refusal path: a missing chip, and a file that is not a chip. The
/// request/set path on a real chip is not exercised here (Boards/README.md says so).
@Suite struct ModemPowerTests {
    func name(_ s: StaticString) -> GPIOLineName? {
        GPIOLineName.parse(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @Test func parsesLineNames() {
        #expect(name("gpiochip0:23") == GPIOLineName(chip: 0, line: 23))
        #expect(name("gpiochip12:0") == GPIOLineName(chip: 12, line: 0))
        #expect(name("gpiochip999:65535") == GPIOLineName(chip: 999, line: 65535))
    }

    @Test(arguments: ["gpiochip0", "gpiochip0:", "gpiochip:23", "gpiochipx:1", "gpiochip0:2x", "gpio0:23",
                      "/dev/gpiochip0:23", "gpiochip1000:1", "gpiochip0:65536", "gpiochip0:123456", "gpiochip0:-1",
                      "GPIOCHIP0:23", "gpiochip0:23:1", "gpiochip0::23", ""])
    func refusesBadLineNames(_ text: String) {
        var t = text
        let parsed = t.withUTF8 { GPIOLineName.parse(UnsafeRawBufferPointer($0)) }
        #expect(parsed == nil)
    }

    @Test func chipPathIsTheCharacterDevice() {
        for (chip, expected) in [(UInt32(0), "/dev/gpiochip0"), (7, "/dev/gpiochip7"), (999, "/dev/gpiochip999")] {
            let path = GPIOLineName(chip: chip, line: 1).withChipPath { String(cString: $0) }
            #expect(path == expected)
        }
    }

    /// The shim static-asserts these against <linux/gpio.h>; the numbers here are the kernel's documented ABI
    /// (include/uapi/linux/gpio.h: 64 offsets, 32-byte consumer, 272-byte config, 5 padding words, fd).
    @Test func uapiStructSizes() {
        #expect(hs_gpio_request_size() == 4 * 64 + 32 + 272 + 4 + 4 + 20 + 4)
        #expect(hs_gpio_values_size() == 16)
    }

    @Test func missingChipIsATypedError() {
        // No gpiochip999 on any machine this runs on; here there is no GPIO chip at all.
        #expect(throws: GPIOError.request(errno: 2)) {
            _ = try GPIOOutput.request(chipPath: "/dev/gpiochip999", line: 23, asserted: false, activeLow: false)
        }
    }

    @Test func fileThatIsNotAChipIsRefusedByTheKernel() {
        // /dev/null opens, and the kernel answers GPIO_V2_GET_LINE_IOCTL with ENOTTY (25).
        #expect(throws: GPIOError.request(errno: 25)) {
            _ = try GPIOOutput.request(chipPath: "/dev/null", line: 0, asserted: false, activeLow: false)
        }
    }

    @Test func unavailableLinesAreReportedOnceAndNothingIsHeld() {
        var c = ModemPowerConfig()
        c.powerKey = GPIOLineName(chip: 999, line: 23)
        c.reset = GPIOLineName(chip: 999, line: 24)
        var power = ModemPower(config: c)
        #expect(power.open() == .powerKey(.request(errno: 2)))
        #expect(power.open() == .powerKey(.request(errno: 2)))
        #expect(throws: ModemPowerError.powerKey(.request(errno: 2))) { try power.pulse(.powerKey) }
        #expect(throws: ModemPowerError.reset(.request(errno: 2))) { try power.pulse(.reset) }
        #expect(power.errors == 6)  // two per open(), one per pulse
        #expect(power.reported == 2)  // one line each
        #expect(!power.holdsPowerKey && !power.holdsReset)
        #expect(power.pulses == 0)
        #expect(power.recovery == PowerRecovery())  // pulses do not move the policy
    }

    @Test func noLinesConfiguredTouchesNothing() throws {
        var power = ModemPower(config: ModemPowerConfig())
        #expect(power.open() == nil)
        try power.pulse(.powerKey)
        try power.pulse(.reset)
        #expect(power.errors == 0 && power.pulses == 0)
        #expect(!power.holdsPowerKey && !power.holdsReset)
    }
}

@Suite struct PowerRecoveryTests {
    func config(key: Bool, reset: Bool, after: Int = 3) -> ModemPowerConfig {
        var c = ModemPowerConfig()
        if key { c.powerKey = GPIOLineName(chip: 0, line: 23) }
        if reset { c.reset = GPIOLineName(chip: 0, line: 24) }
        c.recoveryAfter = after
        return c
    }

    func run(_ c: ModemPowerConfig, silent: [Bool]) -> [PowerAction] {
        var r = PowerRecovery()
        return silent.map { r.afterFailedBringUp(modemSilent: $0, c) }
    }

    @Test func withoutLinesNothingIsEverPressed() {
        #expect(run(config(key: false, reset: false), silent: Array(repeating: true, count: 9)).allSatisfy { $0 == .none })
        #expect(run(config(key: false, reset: false), silent: Array(repeating: false, count: 9)).allSatisfy { $0 == .none })
    }

    @Test func silentModemAtBootGetsThePowerKeyAtOnce() {
        #expect(run(config(key: true, reset: true), silent: [true]) == [.powerKey])
    }

    @Test func repeatedFailuresResetThenPressTheKeyIfStillSilent() {
        let c = config(key: true, reset: true)
        #expect(run(c, silent: [true, true, true, true, true, true]) == [.powerKey, .none, .reset, .powerKey, .none, .reset])
    }

    @Test func answeringModemIsNeverSwitchedOffByThePowerKey() {
        // Answers AT but never registers: reset every third failure; without a reset line, nothing.
        #expect(run(config(key: true, reset: true), silent: [false, false, false, false, false, false])
                == [.none, .none, .reset, .none, .none, .reset])
        #expect(run(config(key: true, reset: false), silent: Array(repeating: false, count: 6)).allSatisfy { $0 == .none })
    }

    @Test func withoutResetASilentModemGetsTheKeyEveryNthFailure() {
        #expect(run(config(key: true, reset: false), silent: Array(repeating: true, count: 6))
                == [.powerKey, .none, .powerKey, .none, .none, .powerKey])
    }

    @Test func successStartsOver() {
        let c = config(key: true, reset: true)
        var r = PowerRecovery()
        _ = r.afterFailedBringUp(modemSilent: true, c)
        _ = r.afterFailedBringUp(modemSilent: true, c)
        r.afterSuccess()
        #expect(r == PowerRecovery())
        #expect(r.afterFailedBringUp(modemSilent: true, c) == .powerKey)
    }
}
