import ArgumentParser
import Foundation
import Gateway
import HandsetCore
import Logging
import ModemSim

/// `handset-emu torture`: the emulated world under seeded random faults, with invariants checked from outside
/// the firmware after every iteration.
struct TortureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Run a seeded fault campaign against the firmware and check its invariants.",
        discussion: """
            One emulated world (modem simulator on a pty, SMS centre, gateway, opposite party, the firmware as its \
            own process) is reused for every iteration. Each iteration draws a fault from the seed:
              \(TortureFault.drawn.map { "\($0.rawValue) (\($0.name))" }.joined(separator: "\n  "))
            (about one in seven also gets garbage or a dropped final result on the line), drives work through the \
            firmware (echo over ESP, a key request for a new flow, a peer push, a long secret over SMS), replays \
            earlier peer-to-handset ESP packets at the handset, and checks:
              \(TortureInvariant.allCases.map(\.rawValue).joined(separator: "\n  "))

            Measured outside the firmware: every ESP packet and key-delegation message on the wire, every datagram \
            the simulator's socket bridge carries and every SMS (scanned for the app payload marker), what the \
            app receives, the gateway's registry against the handset's state file, and login after each kill -9. \
            Work that does not finish (a lost SMS would wait for the firmware's 30 s retry) is recovered by a \
            restart. Prints a table of faults injected and invariants checked; exits 1 on any violation, with the \
            seed and iteration to reproduce it.

            Examples:
              handset-emu torture --seed 7 --iterations 3
              handset-emu torture --seed 7 --iterations 2 --only replay-flood --verbose
            """)

    @Option(help: "Seed for the fault sequence.") var seed: UInt64 = 1
    @Option(help: "Iterations to run.") var iterations = 100
    @Option(help: "Modem profile: simcom, quectel, ublox, sim800, sim800-single (sim800 in single-connection mode).")
    var profile = "simcom"
    @Option(help: "Firmware binary (default: handset-fw next to this tool).") var firmware: String?
    @Option(help: "Seconds a login may take after a restart.") var loginBound: Double = 30
    @Option(help: "Seconds to wait for one piece of work before recovering by a restart.") var workTimeout: Double = 6
    @Flag(help: "One line per iteration.") var verbose = false
    @Flag(help: "Run every iteration even after a violation (a login that never comes is then recovered by power-cycling the modem); still exits 1.")
    var keepGoing = false
    @Flag(help: .hidden) var selfCheck = false
    @Option(help: "Draw only this fault (repeatable): a short name (replay-flood, downlink-blackout, sms-loss, kill-login, ...) or a name from the table.")
    var only: [String] = []

    func validate() throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard EmulatedWorld.profile(named: profile) != nil else {
            throw ValidationError("--profile must be simcom, quectel, ublox, sim800 or sim800-single (generic has no sockets)")
        }
        for o in only where TortureFault(named: o) == nil || TortureFault(named: o) == .replay {
            throw ValidationError("unknown fault '\(o)'; choose from: \(TortureFault.drawn.map(\.name).joined(separator: ", "))")
        }
        guard loginBound > 0, workTimeout > 0 else { throw ValidationError("--login-bound and --work-timeout must be positive") }
    }

    func run() throws {
        if selfCheck { throw ExitCode(TortureSelfCheck.run()) }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .error
            return h
        }
        let fwPath = firmware ?? firmwareBesideThisTool()
        guard FileManager.default.isExecutableFile(atPath: fwPath) else {
            throw ValidationError("firmware not found at \(fwPath) (build it with `swift build`, or pass --firmware)")
        }
        let world = try EmulatedWorld(profile: EmulatedWorld.profile(named: profile)!.0, faults: FaultPlan(seed: seed), trace: false,
                                      pcap: nil, keylog: nil, logger: Logger(label: "torture"), timing: .fast)
        world.firmwareDialect = EmulatedWorld.profile(named: profile)!.dialect
        world.capture.peerPort = world.peer.espPort
        defer { world.shutdown() }
        let campaign = try TortureCampaign(world: world, settings: .init(
            seed: seed, firmware: fwPath, loginBound: loginBound, workTimeout: workTimeout, verbose: verbose,
            only: only.compactMap(TortureFault.init(named:))))
        campaign.ledger.report = { v in
            print("VIOLATION at iteration \(v.iteration): \(v.invariant.rawValue): \(v.detail)")
        }
        print("torture: seed \(seed), \(iterations) iterations, profile \(profile), firmware \(fwPath)")
        let t0 = Date()
        try campaign.start()
        let setup = Date().timeIntervalSince(t0)
        var done = 0
        for i in 1...iterations {
            done = i
            guard try campaign.iteration(i) || keepGoing else { break }
        }
        world.stopFirmware()
        let elapsed = Date().timeIntervalSince(t0)
        Self.printTable(campaign, iterations: done, elapsed: elapsed, setup: setup)
        if let first = campaign.ledger.violations.first {
            print("result: FAIL: \(first.invariant.rawValue) at iteration \(first.iteration): \(first.detail)")
            let filter = only.map { " --only '\($0)'" }.joined()
            print("reproduce: handset-emu torture --seed \(seed) --iterations \(first.iteration) --profile \(profile)"
                  + " --login-bound \(loginBound) --work-timeout \(workTimeout)\(filter)")
            print("--- firmware log (last 30 lines)")
            print(world.firmwareOutput.split(separator: "\n").suffix(30).joined(separator: "\n"))
            throw ExitCode(1)
        }
        print("result: PASS: every invariant held over \(done) iterations")
    }

    static func printTable(_ c: TortureCampaign, iterations: Int, elapsed: Double, setup: Double) {
        let per = iterations > 0 ? (elapsed - setup) / Double(iterations) : 0
        print(String(format: "time: %.1f s in all, %.1f s setup, %.2f s per iteration", elapsed, setup, per))
        let logins = c.loginSeconds
        let mean = logins.isEmpty ? 0 : logins.reduce(0, +) / Double(logins.count)
        print(String(format: "firmware kills: %d (recoveries %d, SA-table maintenance %d); login after restart: %d, mean %.2f s, max %.2f s",
                     c.restarts.kills, c.restarts.recoveries, c.restarts.maintenance, logins.count, mean, logins.max() ?? 0))
        if c.modemPowerCycles > 0 { print("modem power-cycled after a login that never came: \(c.modemPowerCycles) times") }
        print("firmware ESP drop counter (STATUS) after replay bursts: \(c.dropChecks) checked, \(c.dropChecksSkipped) skipped (module rebooted or socket changed meanwhile); lost in a URC-queue overflow (logged by the firmware): \(c.replaysLostInURCOverflow); replays neither counted nor delivered otherwise: \(c.uncountedReplays)\(c.uncountedAt.isEmpty ? "" : " (iterations \(c.uncountedAt.prefix(20).map(String.init).joined(separator: ", ")))")")
        print("lockout faults: \(c.floodCopiesHandled) replayed uplink copies handled by the gateway, \(c.blackoutLost) downlinks lost")
        print("\n  \(pad("fault", 44)) \(lpad("injected", 9))")
        for f in TortureFault.allCases { print("  \(pad(f.rawValue, 44)) \(lpad("\(c.injected[f] ?? 0)", 9))") }
        print("\n  \(pad("work", 44)) \(lpad("done", 9)) \(lpad("timed out", 10))")
        for w in TortureWork.allCases {
            let n = c.work[w] ?? (0, 0)
            print("  \(pad(w.rawValue, 44)) \(lpad("\(n.done)", 9)) \(lpad("\(n.timedOut)", 10))")
        }
        print("\n  \(pad("invariant", 44)) \(lpad("checks", 9)) \(lpad("violations", 10))")
        for inv in TortureInvariant.allCases {
            let n = c.ledger.count(inv)
            print("  \(pad(inv.rawValue, 44)) \(lpad("\(n.checks)", 9)) \(lpad("\(n.violations)", 10))")
        }
        print("")
    }

    static func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
    static func lpad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
}

/// `--self-check`: feeds each checker the fault it exists to catch. Every invariant must report a violation;
/// a checker that cannot fail proves nothing. Exits 1 (violations found, as a campaign would) when all six
/// fired, 3 when one stayed silent.
enum TortureSelfCheck {
    static func run() -> Int32 {
        let ledger = TortureLedger()
        ledger.report = { v in print("VIOLATION (expected): \(v.invariant.rawValue): \(v.detail)") }
        // (key, nonce): one SA, the same IV twice in different packets; a key-delegation counter sealed twice.
        let nonces = NonceLedger(ledger: ledger)
        nonces.sa(spi: 0x5000_0000, key: [UInt8](repeating: 7, count: 32), salt: 1)
        let packet = [0x50, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0xAB, count: 8) + [1, 2, 3]
        nonces.esp(packet)
        var again = packet
        again[7] = 2  // another sequence number, same IV
        nonces.esp(again)
        let up = [0x01, 0x10, 0, 1, 0, 0, 0, 0, 9] + [UInt8](repeating: 0x11, count: 8) + [UInt8](repeating: 0xCD, count: 20)
        var resealed = up
        resealed[20] ^= 1
        nonces.keyDelegation(up: true, up)
        nonces.keyDelegation(up: true, up)  // a byte-identical copy is a retransmission: allowed
        nonces.keyDelegation(up: true, resealed)
        // Replay: the same unique payload reaches the app twice.
        let deliveries = DeliveryLedger(ledger: ledger)
        deliveries.delivered(Array("torture:echo:1:1".utf8))
        deliveries.delivered(Array("torture:echo:1:1".utf8))
        // Clear text: a marker inside a bridged datagram.
        ClearTextScanner(ledger: ledger).scan(Array("xx torture:flow:3:4 yy".utf8), what: "a self-check datagram")
        // Acknowledged state lost: the gateway accepted a counter the handset never persisted, and promoted a key
        // the handset does not hold.
        var h = KeyState(deviceID: 1, key: KeyBytes())
        h.upCounter = 4
        var g = DeviceRecord(id: 1, msisdn: "+1555", key: Data(repeating: 9, count: 32), epoch: 1, upCounter: 5)
        g.downCounter = 0
        for p in KeyAgreement.problems(handset: h, gateway: g) { ledger.check(.ackedKept, false, p) }
        // A consistent pair must pass, or the checker would only ever cry wolf.
        var agreed = KeyState(deviceID: 1, key: KeyBytes())
        Data(repeating: 9, count: 32).withUnsafeBytes { agreed.currentKey = KeyBytes($0) }
        agreed.epoch = 1
        agreed.upCounter = 5
        let falseAlarms = KeyAgreement.problems(handset: agreed, gateway: g)
        // Login: the handset is stuck with a rotation pending, so the wait runs out.
        var stuck = agreed
        stuck.pendingEpoch = 2
        let end = Date().addingTimeInterval(0.2)
        var loggedIn = false
        while !loggedIn && Date() < end {
            loggedIn = KeyAgreement.loggedIn(handset: stuck, gateway: g)
            Thread.sleep(forTimeInterval: 0.02)
        }
        ledger.check(.canLogIn, loggedIn, "no completed login within 0.2 s of a restart (self-check)")
        // A flood the gateway answered twice (the sent counter moved with it); a clean one must pass.
        FloodVerdict.check(ledger, handled: 100, answered: 2, refused: 98, sentBefore: 7, sentAfter: 9)
        FloodVerdict.check(ledger, handled: 100, answered: 1, refused: 99, sentBefore: 7, sentAfter: 8)
        // Storage: parts of abandoned messages left behind; a storage within bound must pass.
        let storage = SMSStorageCheck(ledger: ledger)
        storage.check(stored: 4, bound: 4, after: "a self-check burst within bound")
        storage.check(stored: 10, bound: 4, after: "a self-check burst of partial messages")
        let expected: [TortureInvariant: Int] = [.nonceUnique: 2, .noReplay: 1, .ackedKept: 2, .canLogIn: 1, .noClearText: 1,
                                                 .replayUnanswered: 1, .smsStorageBounded: 1]
        var wrong: [String] = falseAlarms.map { "false alarm: \($0)" }
        for inv in TortureInvariant.allCases {
            let n = ledger.count(inv)
            print("  \(TortureCommand.pad(inv.rawValue, 44)) \(TortureCommand.lpad("\(n.checks)", 9)) \(TortureCommand.lpad("\(n.violations)", 10))")
            if n.violations != expected[inv] { wrong.append("\(inv.rawValue): \(n.violations) violations, want \(expected[inv] ?? 0)") }
        }
        if !wrong.isEmpty {
            print("self-check: FAIL: \(wrong.joined(separator: "; "))")
            return 3
        }
        print("self-check: every checker reported exactly its violations")
        return 1
    }
}
