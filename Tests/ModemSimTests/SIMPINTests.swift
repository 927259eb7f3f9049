import BearerDriver
import Foundation
import Testing
@testable import ModemSim

// The SIM PIN against the simulator's PIN-protected SIM, over a real pty, per dialect (each reads its own retry
// counter: SIMCom AT+SPIC, Quectel AT+QPINC, u-blox AT+UPINCNT, generic AT+CPINR).
@Suite(.serialized) struct SIMPINTests {
    final class Rig {
        let sim: ModemSimulator
        let events = EventLog()
        let driver: SerialModemDriver
        init(_ profile: ModemProfile, pin: String? = "1234", tries: Int = 3, simReadyDelay: Double = 0) throws {
            let link = NSTemporaryDirectory() + "modemsim-pin-\(profile.name)-\(UUID().uuidString.prefix(8))"
            var identity = SubscriberIdentity()
            identity.pin = pin
            identity.pinTries = tries
            let log = events
            var timing = SimTiming.fast
            timing.simReadyDelay = simReadyDelay
            sim = ModemSimulator(profile: profile, linkPath: link, identity: identity, timing: timing,
                                 events: { log.append($0) })
            try sim.start()
            driver = try Array(link.utf8).withUnsafeBytes { try SerialModemDriver.open(pathBytes: $0) }
        }
        deinit { driver.close(); sim.stop() }

        func unlock(_ pin: String?) throws -> SIMUnlockResult {
            try driver.synchronise()
            guard let pin else { return try driver.unlockSIM(pin: nil) }
            return try Array(pin.utf8).withUnsafeBytes { try driver.unlockSIM(pin: $0) }
        }

        func registered(within seconds: Double = 3) throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try driver.registration(.circuit).status.isRegistered { return true }
                usleep(20_000)
            }
            return false
        }
    }

    static let profiles = ModemProfile.all.map(\.name)

    @Test(arguments: profiles)
    func rightPINUnlocksAndRegisters(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        #expect(try rig.unlock("1234") == .unlocked)
        #expect(try rig.driver.simState() == .ready)
        try rig.driver.configureSMS(.store)  // refused (+CME ERROR: 11) while the SIM was locked
        #expect(try rig.registered())
        #expect(rig.events.named("sim-pin").map { $0.string("result") } == ["accepted"])
        // The SIM's own "+CPIN: READY" after the PIN is not taken for a module reboot.
        var rebooted = false
        while let e = try rig.driver.nextEvent(timeoutMs: 100) { if case .moduleRebooted = e { rebooted = true } }
        #expect(!rebooted)
    }

    @Test(arguments: profiles)
    func lockedSIMRefusesSMSAndDoesNotRegister(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.driver.synchronise()
        #expect(try rig.driver.simState() == .pinRequired)
        #expect(throws: ATError.cme(11)) { try rig.driver.configureSMS(.store) }
        #expect(try !rig.registered(within: 0.5))
    }

    @Test(arguments: profiles)
    func counterCommandReportsTriesLeft(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)), tries: 2)
        try rig.driver.synchronise()
        #expect(try rig.driver.simPINTriesLeft() == 2)
    }

    @Test(arguments: profiles)
    func wrongPINSpendsOneTryAndSaysSo(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        #expect(try rig.unlock("9999") == .wrongPIN(triesLeft: 2))
        #expect(try rig.driver.simState() == .pinRequired)
        #expect(try rig.driver.simPINTriesLeft() == 2)
        #expect(rig.events.named("sim-pin").map { $0.int("pin-tries") } == [2])
    }

    @Test(arguments: profiles)
    func oneTryLeftIsNeverSpent(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)), tries: 1)
        #expect(try rig.unlock("1234") == .lastTryKept(triesLeft: 1))
        #expect(rig.events.named("sim-pin").isEmpty)  // nothing was entered, not even the right PIN
        #expect(try rig.driver.simPINTriesLeft() == 1)
    }

    @Test func noPINGivenEntersNothing() throws {
        let rig = try Rig(.simcom)
        #expect(try rig.unlock(nil) == .pinNeeded(triesLeft: 3))
        #expect(rig.events.named("sim-pin").isEmpty)
    }

    @Test func threeWrongPINsLockTheSIMBehindItsPUK() throws {
        // The simulator's side: what the driver's refusal to spend the last try protects against.
        let rig = try Rig(.quectel, tries: 2)
        #expect(try rig.unlock("1111") == .wrongPIN(triesLeft: 1))
        var pin = ATCommand("AT+CPIN=")
        pin.quoted("2222")
        #expect(throws: ATError.cme(16)) { try rig.driver.engine.run(pin) }
        #expect(try rig.driver.simState() == .pukRequired)
        #expect(try rig.unlock("1234") == .pukRequired)
        #expect(rig.events.named("sim-pin").count == 2)
    }

    @Test(arguments: profiles)
    func simPUKStopsWithoutEnteringAnything(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)), tries: 0)
        #expect(try rig.unlock("1234") == .pukRequired)
        #expect(rig.events.named("sim-pin").isEmpty)
        #expect(throws: ATError.cme(12)) { try rig.driver.configureSMS(.store) }
    }

    @Test func unlockSurvivesAReboot() throws {
        // Tries left live on the card; the unlock does not: after a reboot the SIM asks again.
        let rig = try Rig(.simcom)
        #expect(try rig.unlock("9999") == .wrongPIN(triesLeft: 2))
        rig.sim.reboot()
        usleep(200_000)
        #expect(try rig.unlock("1234") == .unlocked)
        rig.sim.reboot()
        usleep(200_000)
        try rig.driver.synchronise()
        #expect(try rig.driver.simState() == .pinRequired)
        #expect(try rig.driver.simPINTriesLeft() == 3)
    }

    @Test func noPINSIMIsReadyAsBefore() throws {
        let rig = try Rig(.ublox, pin: nil)
        #expect(try rig.unlock("1234") == .ready)
        #expect(rig.events.named("sim-pin").isEmpty)
    }

    @Test(arguments: profiles)
    func urcsWhileTheSIMIsSlowToBeReadyAreTakenStepByStep(name: String) throws {
        // The SIM stays busy (+CME ERROR: 14) 1.5 s after its PIN while registration changes pour in: stepped as
        // the firmware's loop steps it, the unlock hands every URC out between steps (none queued past the 8 slots,
        // none lost) and still ends unlocked.
        let rig = try Rig(try #require(ModemProfile.named(name)), simReadyDelay: 1.5)
        try rig.driver.synchronise()
        try rig.driver.enableRegistrationEvents()  // answered while the SIM is locked
        var unlock = SIMUnlock(nowMs: rig.driver.engine.transport.nowMs())
        var result: SIMUnlockResult?
        var registrations = 0, changes = 0, steps = 0
        let pin = Array("1234".utf8)
        while result == nil {
            result = try pin.withUnsafeBytes { try unlock.step(rig.driver, pin: $0) }
            steps += 1
            if result == nil, !unlock.entering, rig.events.named("sim-pin").count == 1, changes < 30 {
                for _ in 0..<3 {  // PIN in, SIM still busy: 6 to 9 URCs before the next step
                    rig.sim.setRegistration(changes % 2 == 0 ? 2 : 1)
                    changes += 1
                }
            }
            // As the firmware's loop: every URC waiting is taken before the next step (here until 100 ms of quiet).
            var wait = max(unlock.waitMs(nowMs: rig.driver.engine.transport.nowMs()), 100)
            while let e = try rig.driver.nextEvent(timeoutMs: wait) {
                if case .registration = e { registrations += 1 }
                wait = 100
            }
            try #require(steps < 2000)
        }
        #expect(result == .unlocked)
        #expect(changes >= 9, "the SIM was busy for several steps")
        #expect(rig.driver.engine.stats.urcOverflows == 0)
        while let e = try rig.driver.nextEvent(timeoutMs: 100) { if case .registration = e { registrations += 1 } }
        // Each change is reported in every domain the dialect enabled (+CREG, +CGREG, maybe +CEREG).
        #expect(registrations >= 2 * changes, "\(registrations) registration URCs for \(changes) changes")
        #expect(rig.driver.engine.stats.urcOverflows == 0)
    }
}
