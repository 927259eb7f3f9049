import BearerDriver
import CHandsetShim
import HandsetCore

/// Where module bring-up stands. It is a state of the loop (Firmware.run), one step per pass with URCs taken
/// between steps, so a module reboot does not start a second loop inside the first.
enum BringUp: Equatable {
    case ready
    /// Sync, echo off, dialect.
    case start
    /// The SIM's state and PIN, one step per pass (Firmware+SIM.swift); `refusedBefore`: the configured PIN is
    /// one the SIM refused before, so it is not entered.
    case sim(SIMUnlock, refusedBefore: Bool)
    /// The SIM took its PIN: its ready banners until `untilMs` are not a module reboot.
    case simSettling(untilMs: UInt64)
    /// SMS set-up, registration URCs.
    case configure
    /// Registration asked once a second; `tries` answers so far said "not registered".
    case registering(tries: Int, nextMs: UInt64)
    /// PDP context, attach, bearer, the ESP socket, stored SMS.
    case bearer
    /// After a failure (or while the module boots after a power pulse): start again at `untilMs`.
    case waiting(untilMs: UInt64)
}

extension Firmware {
    static let registrationTries = 120
    static let bringUpRetryMs: UInt64 = 5000

    /// One step of bring-up. Key-delegation state and SAs survive a module reboot. With power-key or reset
    /// lines wired, a failed bring-up may press one of them (ModemPower's `PowerRecovery` decides); without
    /// any, bring-up is retried every 5 s.
    mutating func advanceBringUp() {
        let now = hs_monotonic_ms()
        switch bringUp {
        case .ready:
            return
        case .waiting(let until):
            if now >= until { bringUp = .start }
        case .start:
            guard startModem() else { return }
            bringUp = .sim(SIMUnlock(nowMs: now), refusedBefore: simPINRefusedBefore())
        case .sim(var unlock, let refusedBefore):
            let result: SIMUnlockResult?
            do throws(ATError) { result = try stepSIMUnlock(&unlock, refusedBefore: refusedBefore) } catch {
                return startFailed(error)
            }
            guard let result else { bringUp = .sim(unlock, refusedBefore: refusedBefore); return }
            if !simUnlockFinished(result, refusedBefore: refusedBefore) {
                bringUp = .waiting(untilMs: now + Self.simRecheckMs)  // no power pulse: the module is fine
            } else if result == .unlocked {
                bringUp = .simSettling(untilMs: now + UInt64(SIMUnlock.bannerQuietMs))
            } else {
                bringUp = .configure
            }
        case .simSettling(let until):
            if now >= until { bringUp = .configure }
        case .configure:
            do throws(ATError) {
                try driver.configureSMS(.store)
                log("modem ready")
                try driver.enableRegistrationEvents()
            } catch {
                return startFailed(error)
            }
            bringUp = .registering(tries: 0, nextMs: now)
        case .registering(let tries, let next):
            guard now >= next else { return }
            if registered(.packet) || registered(.eps) {
                log("registered")
                bringUp = .bearer
            } else if tries + 1 >= Self.registrationTries {
                log("bring-up failed: not registered")
                bringUpFailed()
            } else {
                bringUp = .registering(tries: tries + 1, nextMs: now + 1000)
            }
        case .bearer:
            guard bringUpBearer() else { return bringUpFailed() }
            bringUp = .ready
            power.recovery.afterSuccess()
        }
    }

    /// Starts bring-up over (a module reboot, a reopened link); a job in flight will never be answered.
    mutating func restartBringUp() {
        abortJob(.rebooted)
        if driver.engine.commandInFlight { driver.engine.abandonCommand() }  // a SIM PIN whose answer never came
        readableDue = false
        reopenDue = false
        bringUp = .start
    }

    /// Sync and dialect; the SIM and SMS set-up follow as steps of their own. False: failed (bring-up waits).
    private mutating func startModem() -> Bool {
        switch config.dialect {
        case .auto: break
        case .simcom: driver.use(.simcom)
        case .sim800: driver.use(.sim800)
        case .sim800Single: driver.use(.sim800Single)
        case .quectel: driver.use(.quectel)
        case .ublox: driver.use(.ublox)
        case .generic: driver.use(.generic)
        }
        do throws(ATError) {
            try driver.synchronise(autodetect: config.dialect == .auto)
            return true
        } catch {
            startFailed(error)
            return false
        }
    }

    /// A start step failed: logged, and bring-up tried again later (or a power line pressed).
    private mutating func startFailed(_ e: ATError) {
        modemError("bring-up", e)
        log("bring-up failed: modem did not start")
        bringUpFailed()
    }

    /// The SIM is taking its PIN or has just taken it: its ready banners (`+CPIN: READY`, `SMS Ready`) are no
    /// module reboot.
    var simUnlocking: Bool {
        switch bringUp {
        case .sim(let unlock, _): unlock.pinEntered
        case .simSettling: true
        default: false
        }
    }

    /// The module may still hold a bearer and a socket from before the handset restarted (it kept its power):
    /// "already active" answers are not failures, and a stale socket is closed and opened again.
    private mutating func bringUpBearer() -> Bool {
        if config.apn.count > 0 {
            let refused = config.apn.withBytes { a -> ATError? in
                do throws(ATError) { try driver.defineContext(apn: a); return nil } catch { return error }
            }
            if let refused { modemError("PDP context", refused) }
        }
        var attached = false
        do throws(ATError) { attached = try driver.isAttached() } catch { modemError("attach state", error) }
        if !attached {
            do throws(ATError) { try driver.attach() } catch {
                modemError("attach", error)
                log("bring-up failed: attach")
                return false
            }
        }
        do throws(ATError) { try driver.activateBearer() } catch {
            modemError("bearer", error)
            log("bearer activation refused (already active?); continuing")
        }
        guard openESPSocket() else { log("bring-up failed: socket"); return false }
        log("bearer up")
        do throws(ATError) { try catchUpStoredSMS() } catch {
            modemError("SMS list", error)
            log("could not list stored SMS")
        }
        return true
    }

    /// Registered (home or roaming) in `domain`; a failed query counts as not registered.
    private mutating func registered(_ domain: RegistrationDomain) -> Bool {
        do throws(ATError) { return try driver.registration(domain).status.isRegistered } catch {
            modemError("registration", error)
            return false
        }
    }

    /// Waits 5 s before the next try, or presses a power line and waits for the module to boot.
    private mutating func bringUpFailed() {
        bringUp = .waiting(untilMs: hs_monotonic_ms() + Self.bringUpRetryMs)
        guard power.config.anyLine else { return }
        let action = power.recovery.afterFailedBringUp(modemSilent: !modemAnswersAT(), power.config)
        guard action != .none else { return }
        log(action == .powerKey ? "modem power: pressing the power key" : "modem power: pulsing reset")
        do throws(ModemPowerError) {
            try power.pulse(action)
            bringUp = .waiting(untilMs: hs_monotonic_ms() + UInt64(power.config.bootMs))
        } catch {
            // Reported once by ModemPower; carry on as if no line were wired.
        }
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
}
