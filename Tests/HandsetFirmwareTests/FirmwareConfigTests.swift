import HandsetCore
import Testing
@testable import handset_fw

/// The configuration file's modem power keys (docs/firmware.md, "Modem power"); the profile values are those of
/// Boards/profiles/*.conf.
@Suite struct FirmwareConfigTests {
    static let base = "state_dir = /var/lib/handset\nserial = /dev/ttyAMA0\ngateway_number = +15550100000\n"

    func parse(_ text: String, spd: inout SPD<8>) throws(ConfigError) -> FirmwareConfig {
        var t = text
        var result: Result<FirmwareConfig, ConfigError> = .failure(ConfigError(line: -1, reason: "not run"))
        t.withUTF8 { b in
            do throws(ConfigError) { result = .success(try FirmwareConfig.parse(UnsafeRawBufferPointer(b), spd: &spd)) }
            catch { result = .failure(error) }
        }
        return try result.get()
    }

    @Test func withoutPowerKeysNoLineIsConfigured() throws {
        var spd = SPD<8>()
        let c = try parse(Self.base, spd: &spd)
        #expect(c.power == ModemPowerConfig())
        #expect(!c.power.anyLine)
        #expect(c.power.powerKeyMs == 1000 && c.power.resetMs == 300 && c.power.bootMs == 10_000 && c.power.recoveryAfter == 3)
    }

    @Test func boardProfileLinesAndTimings() throws {
        var spd = SPD<8>()
        let c = try parse(Self.base + """
            power_key_gpio = gpiochip0:23
            reset_gpio = gpiochip0:24   # BCM GPIO24
            gpio_active_low = yes
            power_key_ms = 1500
            reset_ms = 2500
            modem_boot_ms = 0
            recovery_after = 5

            """, spd: &spd)
        #expect(c.power.powerKey == GPIOLineName(chip: 0, line: 23))
        #expect(c.power.reset == GPIOLineName(chip: 0, line: 24))
        #expect(c.power.activeLow)
        #expect(c.power.powerKeyMs == 1500 && c.power.resetMs == 2500 && c.power.bootMs == 0 && c.power.recoveryAfter == 5)
    }

    @Test func noneMeansNotWired() throws {
        var spd = SPD<8>()
        let c = try parse(Self.base + "power_key_gpio = gpiochip0:23\npower_key_gpio = none\nreset_gpio = none\n", spd: &spd)
        #expect(c.power.powerKey == nil && c.power.reset == nil)
        #expect(!c.power.anyLine)
    }

    @Test(arguments: [
        ("power_key_gpio = 23", "expected gpiochipN:LINE or none"),
        ("power_key_gpio = gpiochip0:23 gpiochip0:24", "expected gpiochipN:LINE or none"),
        ("reset_gpio = gpiochip0", "expected gpiochipN:LINE or none"),
        ("reset_gpio = /dev/gpiochip0:24", "expected gpiochipN:LINE or none"),
        ("reset_gpio = none none", "expected gpiochipN:LINE or none"),
        ("reset_gpio = None", "expected gpiochipN:LINE or none"),
        ("gpio_active_low = true", "gpio_active_low: yes or no"),
        ("power_key_ms = 0", "power_key_ms: 50...10000"),
        ("power_key_ms = 10001", "power_key_ms: 50...10000"),
        ("power_key_ms = 1s", "power_key_ms: 50...10000"),
        ("reset_ms = 99999999999999999999999", "reset_ms: 10...10000"),
        ("modem_boot_ms = -1", "modem_boot_ms: 0...120000"),
        ("recovery_after = 0", "recovery_after: 1...100"),
        ("power_key = gpiochip0:23", "unknown key"),
    ])
    func refusesBadValues(_ bad: String, _ reason: String) {
        // The bad line comes first: nothing after it is applied, and the SPD stays empty.
        var spd = SPD<8>()
        let rulesBefore = spd.count
        #expect {
            _ = try parse(bad + "\n" + Self.base + "rule = protect 192.0.2.1/32 udp * * template=1\n", spd: &spd)
        } throws: { e in
            guard let e = e as? ConfigError else { return false }
            return e.line == 1 && String(describing: e.reason) == reason
        }
        #expect(spd.count == rulesBefore)
    }
}
