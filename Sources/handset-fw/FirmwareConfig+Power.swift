/// The modem power keys (docs/firmware.md, "Modem power"). None set: the firmware never touches a GPIO.
extension FirmwareConfig {
    /// Applies `k = v` if `k` is one of the modem power keys; false for any other key.
    mutating func applyPower(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int) throws(ConfigError) -> Bool {
        if bytesEqual(k, "power_key_gpio") || bytesEqual(k, "reset_gpio") {
            // `none`: not wired (the generic board profile says so explicitly).
            let name = bytesEqual(v[0], "none") ? nil : GPIOLineName.parse(v[0])
            guard v.count == 1, name != nil || bytesEqual(v[0], "none") else {
                throw ConfigError(line: line, reason: "expected gpiochipN:LINE or none")
            }
            if bytesEqual(k, "reset_gpio") { power.reset = name } else { power.powerKey = name }
        } else if bytesEqual(k, "gpio_active_low") {
            if bytesEqual(v[0], "yes") { power.activeLow = true }
            else if bytesEqual(v[0], "no") { power.activeLow = false }
            else { throw ConfigError(line: line, reason: "gpio_active_low: yes or no") }
        } else if bytesEqual(k, "power_key_ms") {
            power.powerKeyMs = try Self.milliseconds(v[0], 50...10_000, line: line, "power_key_ms: 50...10000")
        } else if bytesEqual(k, "reset_ms") {
            power.resetMs = try Self.milliseconds(v[0], 10...10_000, line: line, "reset_ms: 10...10000")
        } else if bytesEqual(k, "modem_boot_ms") {
            power.bootMs = try Self.milliseconds(v[0], 0...120_000, line: line, "modem_boot_ms: 0...120000")
        } else if bytesEqual(k, "recovery_after") {
            guard let n = parseUInt(v[0], max: 100), n >= 1 else { throw ConfigError(line: line, reason: "recovery_after: 1...100") }
            power.recoveryAfter = Int(n)
        } else {
            return false
        }
        return true
    }

    static func milliseconds(_ b: UnsafeRawBufferPointer, _ range: ClosedRange<UInt32>, line: Int,
                             _ reason: StaticString) throws(ConfigError) -> UInt32 {
        guard let n = parseUInt(b, max: UInt64(range.upperBound)), range.contains(UInt32(n)) else {
            throw ConfigError(line: line, reason: reason)
        }
        return UInt32(n)
    }
}
