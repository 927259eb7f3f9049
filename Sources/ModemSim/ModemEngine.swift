// The module's AT side: line assembly, echo, result codes, URC delivery, boot and reboot, fault hooks.
// Confined to the simulator's serial queue; every entry point runs there.
import Foundation
import Logging

enum FinalResult: Equatable {
    case ok, error, none
    case cme(Int)
    case cms(Int)
    case text(String)      // a vendor final such as "SEND OK"
}

/// What one command produced.
struct Reply {
    var lines: [[UInt8]] = []
    var final: FinalResult = .ok
    var after: [[UInt8]] = []        // URC-like lines that follow the final result (+CIPOPEN: 0,0)
    var nextMode: ModemEngine.InputMode?
    var prompt: String?               // sent as CRLF + prompt, without a trailing CRLF

    init(_ final: FinalResult = .ok) { self.final = final }
    init(line: String, _ final: FinalResult = .ok) { lines = [Array(line.utf8)]; self.final = final }
    init(lines: [String], _ final: FinalResult = .ok) { self.lines = lines.map { Array($0.utf8) }; self.final = final }
}

public struct SimCounters: Sendable, Equatable {
    public var unknownCommands = 0      // answered ERROR: no table knows them
    public var nonATLines = 0           // lines not starting with AT, ignored
    public var droppedWhileBooting = 0  // input bytes heard while booting
    public var rejectedPDUs = 0         // +CMGS/+CMGW PDUs answered +CMS ERROR: 304
    public var badControlRequests = 0   // SMS centre control datagrams answered {"ok":false}
}

public struct SimTiming: Sendable {
    public var bootDelay: TimeInterval = 0.3
    public var registrationDelay: TimeInterval = 0.2
    public var urcDelay: TimeInterval = 1.5       // delay-urc default
    /// Pause between boot banners (0: all at once). Until the last one the module is still booting and drops
    /// what it hears, as modules that print RDY, +CPIN: READY, ... before their AT interpreter runs.
    public var bannerInterval: TimeInterval = 0
    /// After an accepted PIN the SIM answers `+CME ERROR: 14` (busy) this long, then prints its ready banners
    /// (0: ready at once, banners after the OK).
    public var simReadyDelay: TimeInterval = 0
    public init() {}
    public static let fast: SimTiming = { var t = SimTiming(); t.bootDelay = 0.05; t.registrationDelay = 0.05; t.urcDelay = 0.3; return t }()
}

final class ModemEngine: @unchecked Sendable {
    enum InputMode {
        case booting
        case command
        case smsPDU(length: Int)
        case socketPayload(length: Int, send: ([UInt8]) -> Reply)
    }

    typealias Handler = @Sendable (ModemEngine, ATCommand) -> Reply

    let profile: ModemProfile
    var identity: SubscriberIdentity
    var faults: FaultPlan
    var timing: SimTiming
    let queue: DispatchQueue
    let logger: Logger
    let output: ([UInt8]) -> Void
    let emit: (NetworkEvent) -> Void
    /// The SMS centre's hooks: a submitted PDU, and "the module can take MT messages again".
    var onSubmit: ((_ pdu: [UInt8], _ decoded: DecodedSubmit, _ mr: Int) -> Void)?
    var onReadyForMT: (() -> Void)?
    /// Sees every line the host sends, as the engine takes it (see ATTrace.swift).
    var trace: ((ATTraceLine) -> Void)?

    // Session state, reset by a reboot (factory defaults of V.250 / TS 27.007).
    var mode: InputMode = .booting
    var echo = true, verbose = true, quiet = false
    var cmee = 0
    var cmgf = 0
    var cnmi: [Int]
    var regReport: [RegDomain: Int] = [:]
    var copsFormat = 0
    var cfun = 1
    var lineBuffer: [UInt8] = []
    var payloadBuffer: [UInt8] = []
    var heldURCs: [[UInt8]] = []
    var bootGeneration = 0
    /// The PIN was entered since the last boot; banners held until then (ModemEngine+SIM.swift).
    var simUnlocked = false
    var simBannersHeld: [String] = []
    /// The SIM took its PIN and is still busy until then (`SimTiming.simReadyDelay`).
    var simBusyUntil: DispatchTime?

    // Network state.
    var regStat = 0
    var attached = true
    var pdpContexts: [Int: (type: String, apn: String)] = [1: ("IP", "internet")]
    var pdpActive: Set<Int> = []
    var messageReference = 0

    // SMS storage survives reboots (it is on the SIM).
    var storage: [StoredMessage?]
    var smsStorageName = "SM"

    // Sockets (see ModemEngine+Sockets.swift).
    var sockets: [Int: SimSocket] = [:]
    var netOpen = false
    var simcomRecvFrom: Bool
    var ubloxHexMode = false
    var cip = CIPState()            // SIM800 TCP/IP toolkit state (ModemEngine+CIPSTART.swift)
    var smsFullReport = false
    /// The packet gateway in front of the handset's public endpoint (nil: every socket is bridged on loopback), and
    /// the module socket that last sent through it (see ModemEngine+PacketGateway.swift).
    var packetGateway: PacketGateway?
    var packetGatewaySocket: Int?

    private(set) var handlers: [String: Handler] = [:]
    /// What the module refused or dropped; bad input never changes other state.
    var counters = SimCounters()

    init(profile: ModemProfile, identity: SubscriberIdentity, faults: FaultPlan, timing: SimTiming, queue: DispatchQueue,
         logger: Logger, output: @escaping ([UInt8]) -> Void, emit: @escaping (NetworkEvent) -> Void) {
        self.profile = profile
        self.identity = identity
        self.faults = faults
        self.timing = timing
        self.queue = queue
        self.logger = logger
        self.output = output
        self.emit = emit
        cnmi = profile.defaultCNMI
        simcomRecvFrom = profile.simcomRecvFrom
        storage = Array(repeating: nil, count: profile.smsSlots)
        for table in [ModemEngine.basicCommands, ModemEngine.identityCommands, ModemEngine.networkCommands,
                      ModemEngine.smsCommands, ModemEngine.socketCommands(for: profile.socketDialect),
                      ModemEngine.simCommands, ModemEngine.pinCounterCommands(for: profile.pinCounter)] {
            handlers.merge(table) { a, _ in a }
        }
        if profile.smsFullURCNeedsEnable {
            handlers["+QINDCFG"] = ModemEngine.quectelIndicationConfig
        }
        for reset in profile.resetCommands {
            handlers[reset] = { e, _ in e.queue.async { e.reboot(reason: "reset-command") }; return Reply() }
        }
        for iccid in profile.iccidCommands {
            let prefix = iccid.prefix
            handlers[iccid.command] = { e, _ in Reply(line: prefix + e.identity.iccid) }
        }
    }

    // MARK: Power

    func powerOn() { reboot(reason: "power-on") }

    /// Stops timers and sockets for good; the engine stays silent afterwards.
    func shutdown() {
        bootGeneration += 1
        mode = .booting
        closeAllSockets(reportToModule: false)
    }

    func reboot(reason: String) {
        bootGeneration += 1
        let generation = bootGeneration
        mode = .booting
        closeAllSockets(reportToModule: false)
        echo = true; verbose = true; quiet = false; cmee = 0; cmgf = 0; copsFormat = 0; cfun = 1
        cnmi = profile.defaultCNMI
        regReport = [:]
        simUnlocked = false
        simBusyUntil = nil
        lineBuffer = []; payloadBuffer = []; heldURCs = []
        netOpen = false; pdpActive = []; simcomRecvFrom = profile.simcomRecvFrom; ubloxHexMode = false; cip = CIPState()
        smsFullReport = profile.smsFullURC != nil && !profile.smsFullURCNeedsEnable
        emit(NetworkEvent("boot", [("profile", .string(profile.name)), ("reason", .string(reason))]))
        setRegistration(0, report: false)
        queue.asyncAfter(deadline: .now() + timing.bootDelay) { [self] in
            guard generation == bootGeneration else { return }
            let banners = bootBanners().map { Array("\r\n\($0)\r\n".utf8) }
            if timing.bannerInterval == 0 || banners.isEmpty {
                mode = .command
                for line in banners { output(line) }
            }
            for (i, line) in banners.enumerated() where timing.bannerInterval > 0 {
                queue.asyncAfter(deadline: .now() + timing.bannerInterval * Double(i)) { [self] in
                    guard generation == bootGeneration else { return }
                    output(line)
                    if i == banners.count - 1 { mode = .command }
                }
            }
            let bannersDone = timing.bannerInterval * Double(max(banners.count - 1, 0))
            queue.asyncAfter(deadline: .now() + bannersDone + timing.registrationDelay) { [self] in
                guard generation == bootGeneration, cfun == 1, simLock == .ready else { return }
                setRegistration(1, report: true)
                onReadyForMT?()
            }
        }
    }

    // MARK: Input

    func receive(_ bytes: [UInt8]) {
        for b in bytes { receiveByte(b) }
    }

    private func receiveByte(_ b: UInt8) {
        switch mode {
        case .booting:
            counters.droppedWhileBooting += 1 // a module still booting drops what it hears
            return
        case .command:
            if echo { output([b]) }
            switch b {
            case 0x0D:
                if let trace, !lineBuffer.isEmpty { trace(ATTraceLine(.toModule, lineBuffer)) }
                let line = String(decoding: lineBuffer, as: UTF8.self)
                lineBuffer = []
                handleLine(line)
            case 0x0A: break
            case 0x08, 0x7F: if !lineBuffer.isEmpty { lineBuffer.removeLast() }
            default:
                if lineBuffer.count < 560 { lineBuffer.append(b) } // V.250 asks for at least 40; long lines are cut
            }
        case .smsPDU(let length):
            switch b {
            case 0x1A:
                if echo { output([b]) }
                trace?(ATTraceLine(.toModule, payloadBuffer, terminator: "^Z"))
                let text = String(decoding: payloadBuffer, as: UTF8.self)
                payloadBuffer = []
                mode = .command
                if length > 0, faults.isArmed(.slowSMSSend), faults.fires(.slowSMSSend) {
                    answerLater(submitting: text, length: length)
                } else {
                    finish(submitPDU(hex: text, length: length))
                }
                flushHeldURCs()
            case 0x1B:
                trace?(ATTraceLine(.toModule, payloadBuffer, terminator: "ESC"))
                payloadBuffer = []
                mode = .command
                finish(Reply(.ok))
                flushHeldURCs()
            default:
                if echo { output([b]) }
                if payloadBuffer.count < 400 { payloadBuffer.append(b) }
            }
        case .socketPayload(let length, let send):
            payloadBuffer.append(b)
            if payloadBuffer.count == length {
                let data = payloadBuffer
                trace?(ATTraceLine(.toModule, data, binary: true))
                payloadBuffer = []
                mode = .command
                finish(send(data))
                flushHeldURCs()
            }
        }
    }

    /// slow-sms-send: the network takes its time; the module stays in command mode, so URCs go out first.
    private func answerLater(submitting text: String, length: Int) {
        let ms = faults.value(of: .slowSMSSend) ?? 3000
        let generation = bootGeneration
        emit(NetworkEvent("fault", [("name", .string(FaultKind.slowSMSSend.rawValue)), ("ms", .int(ms))]))
        queue.asyncAfter(deadline: .now() + TimeInterval(ms) / 1000) { [self] in
            guard generation == bootGeneration else { return }
            finish(submitPDU(hex: text, length: length))
        }
    }

    // MARK: Commands

    func handleLine(_ rawLine: String) {
        let line = rawLine.trimmingCharacters(in: " ")
        guard !line.isEmpty else { return }
        guard let commands = ATCommandLine.parse(line) else {
            counters.nonATLines += 1
            logger.debug("ignoring non-AT line", metadata: ["line": "\(line)"])
            return
        }
        var reply = Reply(.ok)
        for command in commands {
            let r = execute(command)
            reply.lines += r.lines
            reply.after += r.after
            reply.final = r.final
            reply.nextMode = r.nextMode
            reply.prompt = r.prompt
            if r.final != .ok || r.nextMode != nil { break }
        }
        if faults.fires(.rebootMidCommand) {
            // Half an answer, then silence and boot banners.
            let half = Array(reply.lines.prefix(reply.lines.count / 2))
            if !half.isEmpty { output(format(lines: half)) }
            emit(NetworkEvent("fault", [("name", .string(FaultKind.rebootMidCommand.rawValue)), ("command", .string(line))]))
            reboot(reason: "fault")
            return
        }
        finish(reply)
    }

    func execute(_ command: ATCommand) -> Reply {
        if let refused = simRefusal(command) { return refused }
        if let handler = handlers[command.name] { return handler(self, command) }
        counters.unknownCommands += 1
        logger.info("unknown command answered ERROR", metadata: ["command": "\(command.raw)"])
        return Reply(.error)
    }

    /// Sends a reply with the garbage, interleave and drop-final faults applied.
    func finish(_ reply: Reply) {
        var out: [UInt8] = []
        if faults.fires(.garbage) {
            out += faults.garbageBytes() + [0x0D, 0x0A]
            emit(NetworkEvent("fault", [("name", .string(FaultKind.garbage.rawValue))]))
        }
        out += format(lines: reply.lines)
        if let mode = reply.nextMode {
            // A prompt: no final result yet.
            self.mode = mode
            payloadBuffer = []
            out += Array("\r\n\(reply.prompt ?? "> ")".utf8)
            output(out)
            return
        }
        if interleaveCandidate() != nil, faults.fires(.interleaveURC), let urc = interleaveCandidate(take: true) {
            out += format(lines: [urc])
            emit(NetworkEvent("fault", [("name", .string(FaultKind.interleaveURC.rawValue))]))
        }
        if faults.fires(.dropFinal) {
            emit(NetworkEvent("fault", [("name", .string(FaultKind.dropFinal.rawValue))]))
        } else {
            out += format(final: reply.final)
        }
        output(out)
        for line in reply.after { urc(line) }
    }

    func format(lines: [[UInt8]]) -> [UInt8] {
        if lines.isEmpty { return [] }
        var out: [UInt8] = verbose ? [0x0D, 0x0A] : []
        for line in lines { out += line + [0x0D, 0x0A] }
        return out
    }

    func format(final: FinalResult) -> [UInt8] {
        if quiet { return [] }
        let text: String
        let code: String
        switch final {
        case .none: return []
        case .ok: text = "OK"; code = "0"
        case .error: text = "ERROR"; code = "4"
        case .cme(let n):
            guard cmee > 0 else { return format(final: .error) }
            text = "+CME ERROR: \(n)"; code = text
        case .cms(let n):
            text = "+CMS ERROR: \(n)"; code = text
        case .text(let t): text = t; code = t
        }
        return verbose ? Array("\r\n\(text)\r\n".utf8) : Array("\(code)\r".utf8)
    }

    func prompt(_ text: String, then mode: InputMode) -> Reply {
        var r = Reply(.none)
        r.nextMode = mode
        r.prompt = text
        return r
    }

    // MARK: URCs

    /// Sends an unsolicited line now, later (delay-urc), or after the current prompt ends.
    func urc(_ line: [UInt8], raw: Bool = false) {
        let bytes = raw ? line : [0x0D, 0x0A] + line + [0x0D, 0x0A]
        if faults.isArmed(.delayURC), faults.fires(.delayURC) {
            let ms = faults.value(of: .delayURC).map { TimeInterval($0) / 1000 } ?? timing.urcDelay
            let generation = bootGeneration
            emit(NetworkEvent("fault", [("name", .string(FaultKind.delayURC.rawValue)), ("ms", .int(Int(ms * 1000)))]))
            queue.asyncAfter(deadline: .now() + ms) { [self] in
                guard generation == bootGeneration else { return }
                deliverURC(bytes)
            }
            return
        }
        deliverURC(bytes)
    }

    func urc(_ text: String) { urc(Array(text.utf8)) }

    private func deliverURC(_ bytes: [UInt8]) {
        switch mode {
        case .command: output(bytes)
        case .booting: break
        default: heldURCs.append(bytes)
        }
    }

    private func flushHeldURCs() {
        let held = heldURCs
        heldURCs = []
        for b in held { output(b) }
    }

    /// A URC that could truthfully appear now: a held one, else the registration report the host enabled.
    private func interleaveCandidate(take: Bool = false) -> [UInt8]? {
        if !heldURCs.isEmpty {
            var first = take ? heldURCs.removeFirst() : heldURCs[0]
            while first.first == 0x0D || first.first == 0x0A { first.removeFirst() }
            while first.last == 0x0D || first.last == 0x0A { first.removeLast() }
            return first
        }
        for domain in RegDomain.allCases where (regReport[domain] ?? 0) > 0 {
            return Array(registrationURC(domain).utf8)
        }
        return nil
    }
}
