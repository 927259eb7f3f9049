import Foundation
import EmulatorSupport
import Gateway
import HandsetCore
import ModemSim

/// One fault campaign in one emulated world. The world is reused across iterations; the firmware is restarted
/// only when a fault calls for it (a kill), when work did not finish (recovery), or before its SA tables fill.
final class TortureCampaign: @unchecked Sendable {
    struct Settings {
        var seed: UInt64
        var firmware: String
        var loginBound: Double
        var workTimeout: Double
        var verbose: Bool
        var only: [TortureFault] = []
    }

    let world: EmulatedWorld
    let settings: Settings
    var rng: TortureRandom
    let ledger = TortureLedger()
    let nonces: NonceLedger
    let deliveries: DeliveryLedger
    let scanner: ClearTextScanner
    let storage: SMSStorageCheck
    let trigger = KDTrigger()
    private(set) var injected: [TortureFault: Int] = [:]
    private(set) var work: [TortureWork: (done: Int, timedOut: Int)] = [:]
    private(set) var restarts = (kills: 0, recoveries: 0, maintenance: 0)
    private(set) var loginSeconds: [Double] = []

    let lock = NSLock()
    /// The newest uplink of a type allowed by UDP (key-request, sa-ack): what `replay-flood` captures.
    var newestUDPUplink: [UInt8]?
    private var peerToHandset: [[UInt8]] = []
    private var handsetEndpoint: sockaddr_in?
    private var confirmAcks = 0
    private var saTransfers = 0
    private var saTransfersAtBoot = 0
    private var flowsSinceBoot = 0
    private var secretsIn = Set<[UInt8]>()
    /// Replays in flight, and how many of them the bridge handed to the module (udp-rx): only those can be dropped.
    private var replaysInFlight = Set<[UInt8]>()
    private var replaysReachedModule = 0
    /// The firmware's STATUS answers (app op 0x85): ESP dropped, the counter of the firmware's own.
    private var lastStatusDropped: UInt32?
    /// Marked datagrams the app received (a replay of a packet the handset never got is a first delivery).
    private var received = 0
    /// Module boots and socket openings/closings: a replay window that saw one cannot be judged by the counter.
    private var socketChurn = 0
    private(set) var dropChecksSkipped = 0
    private(set) var dropChecks = 0
    private(set) var uncountedReplays = 0
    private(set) var uncountedAt: [Int] = []
    /// Replays lost while the driver's fixed URC queue overflowed (the firmware logs each overflow): bounded
    /// memory dropping unsolicited results during a pending command, told apart from an unexplained loss.
    private(set) var replaysLostInURCOverflow = 0
    private var serial = 0
    let replayFD: Int32
    private let statePath: String

    init(world: EmulatedWorld, settings: Settings) throws {
        self.world = world
        self.settings = settings
        rng = TortureRandom(seed: settings.seed)
        nonces = NonceLedger(ledger: ledger)
        deliveries = DeliveryLedger(ledger: ledger)
        scanner = ClearTextScanner(ledger: ledger)
        storage = SMSStorageCheck(ledger: ledger)
        statePath = world.dir.appendingPathComponent("state/device.key").path
        replayFD = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard replayFD >= 0 else { throw WorldError("replay socket: errno \(errno)") }
        installTaps()
    }

    deinit { close(replayFD) }

    private func installTaps() {
        let nonces = self.nonces, trigger = self.trigger, scanner = self.scanner
        world.onKeyDelegation = { [weak self] up, bytes in
            nonces.keyDelegation(up: up, bytes)
            guard bytes.count > 1 else { return }
            trigger.saw(up: up, type: bytes[1])
            if up, let t = KDMessageType(rawValue: bytes[1]), KD.allowedOverUDP(t) {
                self?.lock.withLock { self?.newestUDPUplink = bytes }
            }
            guard !up, let self else { return }
            self.lock.withLock {
                if bytes[1] == KDMessageType.confirmAck.rawValue { self.confirmAcks += 1 }
                if bytes[1] == KDMessageType.saTransfer.rawValue { self.saTransfers += 1 }
            }
        }
        world.onEvent = { [weak self] e in
            switch e.name {
            case "boot", "socket-open", "socket-close":
                self?.lock.withLock { self?.socketChurn += 1 }
            case "udp-tx", "udp-rx":
                guard let hex = e.string("data"), let b = try? hexArgument(hex, name: "data") else { return }
                scanner.scan(b, what: "a bridged datagram (\(e.name))")
                guard e.name == "udp-rx", let self else { return }
                self.lock.withLock { if self.replaysInFlight.contains(b) { self.replaysReachedModule += 1 } }
            case "sms-mo":
                if let hex = e.string("data"), let b = try? hexArgument(hex, name: "data") { scanner.scan(b, what: "an SMS to the network") }
                if let text = e.string("text") { scanner.scan(Array(text.utf8), what: "an SMS text to the network") }
            case "sms-mt":
                if let hex = e.string("pdu"), let b = try? hexArgument(hex, name: "pdu") { scanner.scan(b, what: "an SMS to the module") }
            default: break
            }
        }
        let previousPacket = world.peer.onPacket
        world.peer.onPacket = { [weak self] toPeer, bytes, handset in
            previousPacket?(toPeer, bytes, handset)
            nonces.esp(bytes)
            guard let self else { return }
            self.lock.withLock {
                self.handsetEndpoint = handset
                if !toPeer {
                    self.peerToHandset.append(bytes)
                    if self.peerToHandset.count > 64 { self.peerToHandset.removeFirst() }
                }
            }
        }
        let previousSA = world.peer.onSA
        world.peer.onSA = { spi, fromHandset, key, salt in
            previousSA?(spi, fromHandset, key, salt)
            nonces.sa(spi: spi, key: key, salt: salt)
        }
        world.services.secretReply = { $0 }
    }

    // MARK: The campaign

    /// Boots the firmware and waits for its first login.
    func start() throws {
        try boot()
        guard awaitLogin() else { throw WorldError("the firmware did not log in at the start (see its log)") }
    }

    /// Runs one iteration; returns false once an invariant was violated.
    func iteration(_ i: Int) throws -> Bool {
        ledger.iteration = i
        // Each iteration's draws depend on (seed, i) only, not on how many draws timing caused before.
        rng = TortureRandom(seed: settings.seed &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03)
        world.app.hello()
        if pairsSinceBoot >= 10 || flowsSinceBoot >= 80 {
            restarts.maintenance += 1
            try powerCut()
        }
        let fault = rng.pick(settings.only.isEmpty ? TortureFault.drawn : settings.only)
        var line: TortureFault? = rng.chance(0.15) ? rng.pick(TortureFault.lineFaults) : nil
        if line == fault { line = nil }
        let t0 = Date()
        if let line { arm(line) }
        let finished = try run(fault)
        disarmAll()
        if !finished {
            if settings.verbose {
                print("    work unfinished (\(world.sim.storedSMS) SMS left in the module); firmware log tail:")
                for l in world.firmwareOutput.split(separator: "\n").suffix(8) { print("      \(l)") }
            }
            restarts.recoveries += 1
            try powerCut()
        }
        injectReplays()
        checkAgreement()
        checkStorageNotFull()
        if settings.verbose {
            print(String(format: "  #%d %@%@: %@ (%.2f s)", i, fault.rawValue, line.map { " + \($0.rawValue)" } ?? "",
                         finished ? "work done" : "recovered by restart", Date().timeIntervalSince(t0)))
        }
        return !ledger.anyViolation
    }

    private func run(_ fault: TortureFault) throws -> Bool {
        switch fault {
        case .rebootMidCMGS:
            return withSimFault(.rebootMidSMS, .nth(1), as: fault) { drive(rng.pick([.secret, .keyRequest])) }
        case .rebootBetweenParts:
            return withSimFault(.rebootBetweenParts, .nth(1 + rng.below(2)), as: fault) { drive(.secret) }
        case .garbage, .dropFinal:
            arm(fault)
            return drive(rng.pick(TortureWork.allCases))
        case .smsLoss:
            return withSimFault(.smsLoss, .nth(1 + rng.below(3)), as: fault, giveUpAfterFire: 3) {
                drive(rng.pick([.keyRequest, .push, .secret]))
            }
        case .smsDuplicate:
            return withSimFault(.smsDuplicate, .nth(1 + rng.below(3)), as: fault) { drive(rng.pick([.keyRequest, .push, .secret])) }
        case .smsReorderParts:
            return withSimFault(.smsReorder, .nth(1), as: fault) { drive(.secret) }
        case .smsReorderMessages:
            injected[fault, default: 0] += 1
            return pushTwiceReordered()
        case .socketClose:
            // The reply to the datagram that closed the socket is lost with it; the next echo must work.
            return withSimFault(.socketClose, .nth(1), as: fault) { drive(.echo, timeout: 2) || drive(.echo) }
        case .killRandom:
            // Start some work, then cut the power somewhere inside it.
            kick(rng.pick([.keyRequest, .secret, .echo, .push]))
            _ = pump(rng.seconds(0...1.5))
            injected[fault, default: 0] += 1
            try powerCut()
            return true
        case .killLogin:
            // After the first (login-ack, or confirm-ack when the boot resumed a rotation) or second answer.
            trigger.arm([KDMessageType.loginAck.rawValue, KDMessageType.confirmAck.rawValue], nth: 1 + rng.below(2))
            cut()
            try boot()
            if trigger.wait(min(5, settings.loginBound)) { _ = pump(rng.seconds(0...0.2)) }
            injected[fault, default: 0] += 1
            try powerCut()
            return true
        case .killSAInstall:
            trigger.arm([KDMessageType.saTransfer.rawValue])
            kick(rng.pick([.keyRequest, .push]))
            if trigger.wait(settings.workTimeout) { _ = pump(rng.seconds(0...0.3)) }
            injected[fault, default: 0] += 1
            try powerCut()
            return true
        case .replayFlood:
            injected[fault, default: 0] += 1
            return try replayFlood()
        case .downlinkBlackout:
            injected[fault, default: 0] += 1
            return try downlinkBlackout()
        case .partialSMS:
            return partialMessages()
        case .replay:
            return true
        }
    }

    /// The firmware's reassembly slots (`Firmware.reassembler`): with first parts only arriving, storage may
    /// hold one part per slot and no more.
    static let firmwareReassemblySlots = 4
    /// More abandoned messages than the slots plus the 16 indexes the firmware once tracked, so evictions leak
    /// unless every evicted part is deleted.
    static let partialBurst = 24
    /// Seconds storage gets to settle before it is judged: a dropped final result on the line holds the firmware
    /// up to 20 s (the AT+CMGL timeout) while storage is full.
    static let storageSettle = 25.0

    /// Partial concatenated messages from the gateway's number (random 420-byte bodies: 4 parts, of which the
    /// network carries the first only). Storage must settle at no more than one part per reassembly slot, and
    /// SMS work must still get through.
    private func partialMessages() -> Bool {
        let before = world.sim.faultCount(.partialSMS)
        world.sim.setFault(FaultRule(kind: .partialSMS, value: nil, trigger: .always))
        for _ in 0..<Self.partialBurst {
            let body = (0..<420).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            world.sim.deliverSMS(from: EmulatedWorld.gatewayNumber, data: body, portDst: Int(KD.smsPort), portSrc: Int(KD.smsPort))
        }
        let bound = Self.firmwareReassemblySlots
        pump(Self.storageSettle) { [world] in world.sim.pendingSMS == 0 && world.sim.storedSMS <= bound }
        world.sim.clearFault(.partialSMS)
        injected[.partialSMS, default: 0] += world.sim.faultCount(.partialSMS) - before
        firedBefore[.partialSMS] = world.sim.faultCount(.partialSMS)
        storage.check(stored: world.sim.storedSMS + world.sim.pendingSMS, bound: bound,
                      after: "\(Self.partialBurst) partial messages (\(world.sim.pendingSMS) still waiting at the SMS centre)")
        let ok = drive(.secret)
        pump(Self.storageSettle) { [world] in world.sim.storedSMS <= bound }
        storage.check(stored: world.sim.storedSMS, bound: bound, after: "a secret over SMS following the partial messages")
        return ok
    }

    /// Whatever the fault, storage must not stay full: SMS would stop arriving.
    private func checkStorageNotFull() {
        let capacity = world.sim.profile.smsSlots
        pump(Self.storageSettle) { [world] in world.sim.storedSMS < capacity }
        storage.check(stored: world.sim.storedSMS, bound: capacity - 1, after: "the iteration (storage full: SMS stop arriving)")
    }

    // MARK: Faults

    private func arm(_ fault: TortureFault) {
        switch fault {
        case .garbage: world.sim.setFault(FaultRule(kind: .garbage, value: nil, trigger: .probability(0.3)))
        case .dropFinal: world.sim.setFault(FaultRule(kind: .dropFinal, value: nil, trigger: .nth(1 + rng.below(3))))
        default: return
        }
        lineArmed.append(fault)
    }
    private var lineArmed: [TortureFault] = []

    private func disarmAll() {
        for f in lineArmed {
            let kind: FaultKind = f == .garbage ? .garbage : .dropFinal
            injected[f, default: 0] += world.sim.faultCount(kind) - (firedBefore[kind] ?? 0)
            firedBefore[kind] = world.sim.faultCount(kind)
        }
        lineArmed = []
        for kind in FaultKind.allCases { world.sim.clearFault(kind) }
    }
    private var firedBefore: [FaultKind: Int] = [:]

    /// Arms one simulator fault around `body`, counting it only if it actually fired. With `giveUpAfterFire`,
    /// work stops being waited for that many seconds after the fault fired (the firmware would retry in 30 s).
    private func withSimFault(_ kind: FaultKind, _ t: FaultRule.Trigger, as fault: TortureFault, giveUpAfterFire: Double? = nil,
                              _ body: () -> Bool) -> Bool {
        let before = world.sim.faultCount(kind)
        world.sim.setFault(FaultRule(kind: kind, value: nil, trigger: t))
        if let g = giveUpAfterFire {
            giveUp = { [weak self] in
                guard let self else { return false }
                if self.firedAt == nil, self.world.sim.faultCount(kind) > before { self.firedAt = Date() }
                return self.firedAt.map { Date().timeIntervalSince($0) > g } ?? false
            }
        }
        defer { giveUp = nil; firedAt = nil }
        let ok = body()
        world.sim.clearFault(kind)
        let fired = world.sim.faultCount(kind) - before
        injected[fault, default: 0] += fired
        firedBefore[kind] = world.sim.faultCount(kind)
        return ok
    }
    private var giveUp: (() -> Bool)?
    private var firedAt: Date?

    // MARK: Work

    private func payload(_ kind: String, size: Int = 0) -> [UInt8] {
        serial += 1
        var p = Array("torture:\(kind):\(ledger.iteration):\(serial)".utf8)
        if p.count < size { p += [UInt8](repeating: 0x2E, count: size - p.count) }
        return p
    }

    /// Starts `w` and waits for its outcome, seen from the outside (the app, the peer).
    func drive(_ w: TortureWork, timeout: Double? = nil) -> Bool {
        let done = kick(w)
        let ok = pump(timeout ?? settings.workTimeout, until: done)
        work[w, default: (0, 0)].done += ok ? 1 : 0
        work[w, default: (0, 0)].timedOut += ok ? 0 : 1
        return ok
    }

    /// Sends the request for `w`; returns the condition that says it completed.
    @discardableResult
    private func kick(_ w: TortureWork) -> () -> Bool {
        switch w {
        case .echo:
            let p = payload("echo")
            world.app.datagram(to: EmulatedPeer.echoPort, from: 5000, p)
            return { [deliveries] in deliveries.has(p) }
        case .keyRequest:
            flowsSinceBoot += 1
            let p = payload("flow")
            world.app.datagram(to: 9, from: UInt16(9000 + flowsSinceBoot), p)
            return { [world] in world.peer.counters.delivered.suffix(16).contains { $0.payload == p } }
        case .push:
            let before = world.peer.counters.dummies
            let sel = TrafficSelector(local: world.handsetAddress, remote: world.peer.address, localPort: 9000, remotePort: 0)
            world.deliver(world.gateway.push(device: world.deviceID, selector: sel))
            return peerSends(after: before)
        case .secret:
            let p = payload("secret", size: 300)
            world.app.secret(channel: 1, p)
            return { [weak self] in self?.lock.withLock { self?.secretsIn.contains(p) } ?? false }
        }
    }

    /// Once the handset announced its newest pushed SA (a dummy packet), the peer sends; done when the app has it.
    private func peerSends(after dummies: Int) -> () -> Bool {
        var sent: [UInt8]?
        return { [weak self] in
            guard let self else { return false }
            if let p = sent { return self.deliveries.has(p) }
            guard self.world.peer.counters.dummies > dummies else { return false }
            let p = self.payload("push")
            guard self.world.peer.send(p, to: self.world.handsetAddress, port: 9000, from: 7777) else { return false }
            sent = p
            return false
        }
    }

    /// Two pushes whose downlinks the network delivers in reverse order: the older must be refused (counter
    /// low), and the newer pair must carry traffic.
    private func pushTwiceReordered() -> Bool {
        let before = world.peer.counters.dummies
        let sel = TrafficSelector(local: world.handsetAddress, remote: world.peer.address, localPort: 9000, remotePort: 0)
        let first = world.gateway.push(device: world.deviceID, selector: sel)
        let second = world.gateway.push(device: world.deviceID, selector: sel)
        world.deliver(second)
        world.deliver(first)
        let ok = pump(settings.workTimeout, until: peerSends(after: before))
        work[.push, default: (0, 0)].done += ok ? 1 : 0
        work[.push, default: (0, 0)].timedOut += ok ? 0 : 1
        return ok
    }

    /// Takes everything the firmware sends the app for up to `seconds`, until `done` holds.
    @discardableResult
    func pump(_ seconds: Double, until done: () -> Bool = { false }) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while true {
            if done() { return true }
            if let g = giveUp, g() { return false }
            let left = end.timeIntervalSinceNow
            if left <= 0 { return false }
            if let m = world.app.wait(timeout: min(left, 0.05), { _ in true }) { take(m) }
        }
    }

    private func take(_ m: AppClient.Message) {
        switch m.op {
        case 0x81 where m.body.count >= 8:
            let p = Array(m.body.dropFirst(8))
            if p.contains(ClearTextScanner.marker) { deliveries.delivered(p); received += 1 }
        case 0x85 where m.body.count >= 10:
            let d = m.body[6..<10].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            lock.withLock { lastStatusDropped = max(lastStatusDropped ?? 0, d) }
        case 0x82 where m.body.count >= 2:
            let p = Array(m.body.dropFirst(2))
            lock.withLock { _ = secretsIn.insert(p) }
        default:
            break
        }
    }

    // MARK: Power and login

    private var pairsSinceBoot: Int { lock.withLock { saTransfers - saTransfersAtBoot } }

    private func boot() throws {
        for kind in FaultKind.allCases { world.sim.clearFault(kind) }
        // A gateway drops half-reassembled uplinks of a handset that restarted (its references start again).
        world.lock.withLock { world.uplinkParts = [:] }
        lock.withLock {
            handsetEndpoint = nil
            saTransfersAtBoot = saTransfers
        }
        flowsSinceBoot = 0
        try world.startFirmware(path: settings.firmware, qemu: nil)
        world.app.hello()
    }

    /// kill -9, the agreement check on a quiet system, restart, and the login bound.
    func powerCut() throws {
        cut()
        try boot()
        if !awaitLogin() { try modemPowerCycle() }
    }

    /// After a login that did not come (the violation is already recorded), power-cycle the module, as the
    /// firmware's reset line would on a board, so a --keep-going campaign can continue.
    private func modemPowerCycle() throws {
        modemPowerCycles += 1
        if settings.verbose {
            print("    no login; firmware log tail:")
            for l in world.firmwareOutput.split(separator: "\n").suffix(6) { print("      \(l)") }
        }
        world.stopFirmware()
        world.sim.reboot()
        try boot()
        if !awaitLogin() { throw WorldError("no login even after a modem power cycle") }
    }
    private(set) var modemPowerCycles = 0
    /// `replay-flood` copies the gateway's UDP listener handled, and `downlink-blackout` downlinks lost, in all.
    var floodCopiesHandled = 0, blackoutLost = 0

    private func cut() {
        world.stopFirmware()
        restarts.kills += 1
        world.queue.sync {}  // whatever reached the gateway has been handled
        checkAgreement()
    }

    /// Login is complete when a confirm-ack went down after the boot and both sides sit on one confirmed key.
    @discardableResult
    private func awaitLogin() -> Bool {
        let acks = lock.withLock { confirmAcks }
        let t0 = Date()
        let ok = pump(settings.loginBound) { [self] in
            guard lock.withLock({ confirmAcks }) > acks, let h = KeyAgreement.readState(statePath),
                  let g = try? world.registry.device(id: world.deviceID) else { return false }
            return KeyAgreement.loggedIn(handset: h, gateway: g)
        }
        if ok { loginSeconds.append(Date().timeIntervalSince(t0)) }
        ledger.check(.canLogIn, ok, "no completed login within \(settings.loginBound) s of a restart")
        world.app.hello()
        return ok
    }

    /// Registry against state file; the file is read before and after the registry so the pair is consistent.
    func checkAgreement() {
        for _ in 0..<50 {
            guard let a = KeyAgreement.readState(statePath) else { Thread.sleep(forTimeInterval: 0.01); continue }
            let g = try? world.registry.device(id: world.deviceID)
            guard let b = KeyAgreement.readState(statePath), a == b, let g else { continue }
            let problems = KeyAgreement.problems(handset: a, gateway: g)
            ledger.check(.ackedKept, problems.isEmpty, problems.joined(separator: "; "))
            return
        }
        ledger.check(.ackedKept, false, "the handset's state file could not be read whole")
    }

    // MARK: Replays

    /// The firmware's own ESP drop counter, asked over the app interface (STATUS). The counter only grows within
    /// a boot, so the largest answer seen since `reset` is the freshest (a late answer to an earlier ask is lower).
    private func firmwareDrops(reset: Bool) -> UInt32? {
        if reset { lock.withLock { lastStatusDropped = nil } }
        world.app.send([0x04])
        var d: UInt32?
        _ = pump(1) { [self] in d = lock.withLock { lastStatusDropped }; return d != nil }
        return d
    }

    /// Sends copies of earlier peer-to-handset ESP packets (the newest, plus two drawn from the last 64) to the
    /// handset's current endpoint. Each payload is unique, so an accepted copy shows as a second delivery; and
    /// the firmware's drop counter must grow by at least the copies the bridge handed to the module.
    private func injectReplays() {
        let (endpoint, packets) = lock.withLock { (handsetEndpoint, peerToHandset) }
        guard var dst = endpoint, let newest = packets.last else { return }
        let chosen = [newest, rng.pick(packets), rng.pick(packets)]
        let before = firmwareDrops(reset: true)
        let receivedBefore = received
        let churnBefore = lock.withLock { socketChurn }
        let overflowsBefore = urcOverflowsLogged()
        lock.withLock { replaysInFlight = Set(chosen); replaysReachedModule = 0 }
        for p in chosen {
            _ = p.withUnsafeBytes { b in
                withUnsafePointer(to: &dst) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(replayFD, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                } }
            }
        }
        injected[.replay, default: 0] += chosen.count
        pump(0.2)
        for _ in chosen { deliveries.replayWindowPassed() }
        guard let before else { return }
        // The firmware takes one modem event per loop turn and answers STATUS in between (and a command waiting
        // for a lost final result holds it up to 5 s): ask again for up to 8 s before judging.
        var after: UInt32?
        var reached = 0
        let end = Date().addingTimeInterval(8)
        while Date() < end {
            after = firmwareDrops(reset: false)
            // A copy of a packet the handset never received (its socket was gone) is a first delivery, not a replay.
            reached = lock.withLock { replaysReachedModule } - (received - receivedBefore)
            if let a = after, a &- before >= UInt32(max(reached, 0)) { break }
            pump(0.2)
        }
        lock.withLock { replaysInFlight = [] }
        guard let after, lock.withLock({ socketChurn }) == churnBefore else { dropChecksSkipped += 1; return }
        // Reported, not a violation: nothing was accepted (that is `delivered`'s check), but the firmware lost
        // track of a packet (e.g. an event discarded while it waited during a bring-up).
        dropChecks += 1
        let missing = max(reached, 0) - Int(after &- before)
        if missing > 0 && urcOverflowsLogged() > overflowsBefore {
            replaysLostInURCOverflow += missing
        } else if missing > 0 {
            uncountedReplays += missing
            uncountedAt.append(ledger.iteration)
            if settings.verbose {
                print("    \(missing) replayed packet(s) reached the module, neither delivered nor counted; firmware log tail:")
                for l in world.firmwareOutput.split(separator: "\n").suffix(12) { print("      \(l)") }
            }
        }
    }

    /// URC-queue overflows the firmware has logged since it last started (a restart counts as socket churn).
    private func urcOverflowsLogged() -> Int {
        world.firmwareOutput.split(separator: "\n").count { $0.contains("unsolicited results overflowed the queue") }
    }
}
