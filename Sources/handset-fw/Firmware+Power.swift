import BearerDriver
import CHandsetShim

extension Firmware {
    /// Bring-up, repeated until it succeeds or a stop signal arrives. With power-key or reset lines wired, a failed
    /// bring-up may press one of them (ModemPower's `PowerRecovery` decides); without any, this is the plain retry
    /// every 5 s it always was. Returns false only when asked to stop.
    mutating func bringUpUntilReady() -> Bool {
        while hs_stop_requested() == 0 {
            if bringUp() {
                power.recovery.afterSuccess()
                return true
            }
            guard power.config.anyLine else {
                waitForModem(ms: 5000)
                continue
            }
            let action = power.recovery.afterFailedBringUp(modemSilent: !modemAnswersAT(), power.config)
            guard action != .none else {
                waitForModem(ms: 5000)
                continue
            }
            log(action == .powerKey ? "modem power: pressing the power key" : "modem power: pulsing reset")
            do throws(ModemPowerError) {
                try power.pulse(action)
                waitForBoot(ms: power.config.bootMs)
            } catch {
                // Reported once by ModemPower; carry on as if no line were wired.
                waitForModem(ms: 5000)
            }
        }
        return false
    }

    /// "AT" → OK within two tries of a second each.
    func modemAnswersAT() -> Bool {
        for _ in 0..<2 {
            do throws(ATError) {
                _ = try driver.engine.run("AT", timeoutMs: 1000)
                return true
            } catch {
                continue
            }
        }
        return false
    }

    /// Lets the module boot, draining its start-up URCs (RDY, +CPIN: READY, ...) meanwhile.
    mutating func waitForBoot(ms: UInt32) {
        let end = hs_monotonic_ms() + UInt64(ms)
        while hs_stop_requested() == 0 {
            let now = hs_monotonic_ms()
            guard now < end else { return }
            waitForModem(ms: Int(min(end - now, 1000)))
        }
    }
}
