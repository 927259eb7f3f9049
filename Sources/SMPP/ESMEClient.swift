// The gateway's side of SMPP 3.4: an ESME bound as a transceiver. One thread owns the socket and does all I/O;
// callers only queue parts and read counters under a lock that is never held across I/O.
import Foundation

public struct ESMEConfig: Sendable {
    public var host: String
    public var port: Int
    public var systemID: String
    public var password: String
    public var systemType = ""
    public var sourceAddr = ""             // "+" first: international (TON 1)
    public var portDst = 16400
    public var portSrc = 16400
    public var window = 8
    public var enquireLinkInterval: Double = 30
    public var responseTimeout: Double = 10
    public var throttleBackoff: Double = 0.5      // first pause after ESME_RTHROTTLED; doubles up to maxBackoff
    public var maxBackoff: Double = 30
    public var reconnectDelay: Double = 1
    /// Parts queued and not yet sent: a message that would take the outbox past it is refused whole
    /// (`ESMESendError.outboxFull`, counted in `outboxRefused`). Parts put back after a dropped link or a throttle
    /// were accepted already and go back regardless.
    public var outboxCapacity = 1024
    public init(host: String, port: Int, systemID: String, password: String) {
        self.host = host; self.port = port; self.systemID = systemID; self.password = password
    }
}

public struct ESMECounters: Sendable, Equatable {
    public var connects = 0, connectFailures = 0, binds = 0, bindFailures = 0, reconnects = 0
    public var submitsSent = 0, submitsAcked = 0, submitsFailed = 0, throttled = 0, resent = 0, responseTimeouts = 0
    public var delivered = 0, deliveryReceipts = 0, badUDH = 0
    public var enquireLinksSent = 0, enquireLinksAnswered = 0
    public var genericNacksSent = 0, genericNacksReceived = 0, unexpectedPDUs = 0, unknownResponses = 0
    public var unbindsReceived = 0
    /// deliver_sm answered with a temporary error because the client was draining (the SMSC retries them later),
    /// and deferred acknowledgements dropped because their connection had gone (the SMSC redelivers those).
    public var deliveriesRefused = 0, acksLost = 0
    /// Messages refused because the outbox was full (none of their parts queued).
    public var outboxRefused = 0
    /// Malformed PDUs by kind (the associated value of SMPPError is kept: a truncated frame and an unknown id differ).
    public var malformed: [SMPPError: Int] = [:]
    public var malformedTotal: Int { malformed.values.reduce(0, +) }
    public init() {}
}

/// A mobile-originated SMS as the SMSC handed it over.
public struct InboundSMS: Sendable, Equatable {
    public var originator: String
    public var destination: String
    public var dataCoding: UInt8
    public var udh: UDHFields
    public var payload: [UInt8]
    public init(originator: String, destination: String, dataCoding: UInt8, udh: UDHFields, payload: [UInt8]) {
        self.originator = originator; self.destination = destination; self.dataCoding = dataCoding
        self.udh = udh; self.payload = payload
    }
}

/// The answer to one deliver_sm, given once its message has been handled (or refused). The client sends the
/// deliver_sm_resp from its I/O thread; an answer for a connection that has since dropped is not sent.
public struct DeliveryAck: Sendable {
    let respond: @Sendable (UInt32) -> Void
    public init(_ respond: @escaping @Sendable (UInt32) -> Void) { self.respond = respond }
    public func callAsFunction(_ status: UInt32 = SMPPStatus.ok) { respond(status) }
}

/// What the gateway needs of an ESME: the threaded `ESMEClient` and the swift-nio one (SMPPNIO) both give it.
public protocol ESMELink: AnyObject, Sendable {
    var config: ESMEConfig { get }
    var counters: ESMECounters { get }
    var isBound: Bool { get }
    /// Parts queued, not yet sent.
    var pendingParts: Int { get }
    func start()
    /// Unbinds if bound and returns once the link is closed. Call it from outside the client's callbacks.
    func stop()
    /// Queues `payload` as port-addressed binary SMS; returns the number of parts. Throws, queuing nothing, when it
    /// cannot be split (`.udh`) or the outbox has no room for all its parts (`.outboxFull`).
    @discardableResult func send(to destination: String, payload: [UInt8]) throws(ESMESendError) -> Int
    /// From now on every deliver_sm is answered ESME_RX_T_APPN (the SMSC keeps it): the first step of a drain.
    func refuseDeliveries()
}

public final class ESMEClient: ESMELink, @unchecked Sendable {
    struct Part { var destination: String; var userData: [UInt8]; var notBefore: Double = 0 }
    struct InFlight { var part: Part; var sentAt: Double }

    public let config: ESMEConfig
    private let onDeliver: @Sendable (InboundSMS, DeliveryAck?) -> Void
    private let defersAcks: Bool
    private let lock = NSLock()
    private var outbox: [Part] = []
    private var _counters = ESMECounters()
    private var _bound = false
    private var running = false
    private var nextReference: UInt16 = 1
    private var refusing = false
    private var generation = 0
    private var acks: [(generation: Int, sequence: UInt32, status: UInt32)] = []
    private let stopped = DispatchSemaphore(value: 0)
    // Owned by the I/O thread only.
    private var inflight: [UInt32: InFlight] = [:]
    private var sequence: UInt32 = 0
    private var backoff: Double = 0
    private var pausedUntil: Double = 0

    /// Each deliver_sm is acknowledged as it arrives, before `onDeliver` runs.
    public init(config: ESMEConfig, onDeliver: @escaping @Sendable (InboundSMS) -> Void) {
        self.config = config
        self.onDeliver = { sms, _ in onDeliver(sms) }
        defersAcks = false
    }

    /// Each deliver_sm is acknowledged only when `onDeliver` calls its `DeliveryAck`, from any thread: the SMSC
    /// keeps (and redelivers) a message until it was handled. `onDeliver` runs on the I/O thread: hand work off.
    public init(config: ESMEConfig, deferringAcks onDeliver: @escaping @Sendable (InboundSMS, DeliveryAck) -> Void) {
        self.config = config
        self.onDeliver = { sms, ack in onDeliver(sms, ack!) }
        defersAcks = true
    }

    /// From now on each deliver_sm is answered with a temporary error (ESME_RX_T_APPN), so the SMSC keeps it for
    /// a later delivery: the first step of a drain.
    public func refuseDeliveries() { locked { refusing = true } }

    public var counters: ESMECounters { locked { _counters } }
    public var isBound: Bool { locked { _bound } }
    /// Parts queued or awaiting submit_sm_resp.
    public var pendingParts: Int { locked { outbox.count } }

    public func start() {
        locked { running = true }
        // The thread holds the client until `run` returns; the client does not hold the thread (no cycle).
        let t = Thread { [self] in run(); stopped.signal() }
        t.name = "esme"
        t.start()
    }

    /// Unbinds if bound and waits for the I/O thread to finish.
    public func stop() {
        let wasRunning = locked { () -> Bool in defer { running = false }; return running }
        if wasRunning { stopped.wait() }
    }

    /// Queues `payload` for `destination` as port-addressed binary SMS; returns the number of parts.
    @discardableResult
    public func send(to destination: String, payload: [UInt8]) throws(ESMESendError) -> Int {
        let ref = locked { () -> UInt16 in defer { nextReference &+= 1 }; return nextReference }
        let parts: [[UInt8]]
        do { parts = try PortAddressedSMS.parts(payload, portDst: config.portDst, portSrc: config.portSrc, reference: ref) } catch {
            throw .udh(error)
        }
        let queued = locked { () -> Bool in
            guard outbox.count + parts.count <= config.outboxCapacity else { _counters.outboxRefused += 1; return false }
            outbox += parts.map { Part(destination: destination, userData: $0) }
            return true
        }
        guard queued else { throw .outboxFull(capacity: config.outboxCapacity) }
        return parts.count
    }

    // MARK: I/O thread

    private func run() {
        var first = true
        while locked({ running }) {
            if !first {
                locked { _counters.reconnects += 1 }
                sleepWhileRunning(config.reconnectDelay)
                guard locked({ running }) else { break }
            }
            first = false
            let socket: SMPPSocket
            do { socket = try SMPPSocket.connect(host: config.host, port: config.port) } catch {
                locked { _counters.connectFailures += 1 }
                continue
            }
            locked { _counters.connects += 1; generation += 1 }
            if bind(socket) { session(socket) }
            locked { _bound = false }
            requeueInflight()
            socket.close()
        }
    }

    private func bind(_ socket: SMPPSocket) -> Bool {
        let seq = nextSequence()
        var b = SMPPBind(systemID: config.systemID, password: config.password, systemType: config.systemType)
        b.addressRange = ""
        do {
            try socket.send(SMPPPDU(.bindTransceiver(b), sequence: seq))
            let deadline = now() + config.responseTimeout
            while now() < deadline, locked({ running }) {
                guard socket.readable(timeoutMs: 100) else { continue }
                guard let pdu = try receive(socket) else { continue }
                if case .bindTransceiverResp = pdu.body, pdu.sequence == seq {
                    let ok = pdu.status == SMPPStatus.ok
                    locked { if ok { _counters.binds += 1; _bound = true } else { _counters.bindFailures += 1 } }
                    return ok
                }
                try handle(pdu, socket)
            }
        } catch {}
        locked { _counters.bindFailures += 1 }
        return false
    }

    private func session(_ socket: SMPPSocket) {
        var lastLink = now()
        do {
            while true {
                guard locked({ running }) else {
                    try? sendAcks(socket)
                    return unbind(socket)
                }
                try sendAcks(socket)
                let t = now()
                if t - lastLink >= config.enquireLinkInterval {
                    try socket.send(SMPPPDU(.enquireLink, sequence: nextSequence()))
                    locked { _counters.enquireLinksSent += 1 }
                    lastLink = t
                }
                if inflight.values.contains(where: { t - $0.sentAt > config.responseTimeout }) {
                    locked { _counters.responseTimeouts += 1 }
                    return // the link is not answering: reconnect, resend what was in flight
                }
                try fillWindow(socket, at: t)
                guard socket.readable(timeoutMs: 20) else { continue }
                guard let pdu = try receive(socket) else { continue }
                lastLink = now()
                if case .unbind = pdu.body {
                    try socket.send(SMPPPDU(.unbindResp, sequence: pdu.sequence))
                    locked { _counters.unbindsReceived += 1 }
                    return
                }
                try handle(pdu, socket)
            }
        } catch {}
    }

    /// §4.2: unbind, then wait briefly for unbind_resp; responses still in flight are requeued by the caller.
    private func unbind(_ socket: SMPPSocket) {
        let seq = nextSequence()
        guard (try? socket.send(SMPPPDU(.unbind, sequence: seq))) != nil else { return }
        let deadline = now() + 1
        while now() < deadline, socket.readable(timeoutMs: 50) {
            guard let pdu = try? receive(socket) else { continue }
            if case .unbindResp = pdu.body, pdu.sequence == seq { return }
            try? handle(pdu, socket)
        }
    }

    private func fillWindow(_ socket: SMPPSocket, at t: Double) throws(SMPPSocketError) {
        guard t >= pausedUntil else { return }
        while inflight.count < config.window {
            let part: Part? = locked {
                guard let i = outbox.firstIndex(where: { $0.notBefore <= t }) else { return nil }
                return outbox.remove(at: i)
            }
            guard let part else { return }
            var m = SMPPShortMessage()
            m.sourceTON = config.sourceAddr.hasPrefix("+") ? 1 : 0; m.sourceNPI = 1
            m.sourceAddr = config.sourceAddr.filter { $0 != "+" }
            m.destTON = part.destination.hasPrefix("+") ? 1 : 0; m.destNPI = 1
            m.destAddr = part.destination.filter { $0 != "+" }
            m.esmClass = SMPPShortMessage.udhi
            m.dataCoding = 0x04
            m.shortMessage = part.userData
            let seq = nextSequence()
            inflight[seq] = InFlight(part: part, sentAt: t)
            try socket.send(SMPPPDU(.submitSM(m), sequence: seq))
            locked { _counters.submitsSent += 1 }
        }
    }

    /// One PDU, or nil when it was malformed (counted, generic_nack sent). A bad frame header loses the stream.
    private func receive(_ socket: SMPPSocket) throws(SMPPSocketError) -> SMPPPDU? {
        let bytes: [UInt8]
        do { bytes = try socket.readPDU() } catch {
            if case .badFrame(let e) = error {
                locked { _counters.malformed[e, default: 0] += 1 }
                try? sendNack(socket, status: SMPPStatus.invalidCommandLength, sequence: 0)
            }
            throw error
        }
        do { return try SMPPPDU.decode(bytes) } catch {
            locked { _counters.malformed[error, default: 0] += 1 }
            let seq = (try? SMPPPDU.header(bytes))?.sequence ?? 0
            if case .unknownCommand = error {
                try sendNack(socket, status: SMPPStatus.invalidCommandID, sequence: seq)
            } else {
                try sendNack(socket, status: SMPPStatus.invalidMessageLength, sequence: seq)
            }
            return nil
        }
    }

    private func sendNack(_ socket: SMPPSocket, status: UInt32, sequence: UInt32) throws(SMPPSocketError) {
        try socket.send(SMPPPDU(.genericNack, sequence: sequence, status: status))
        locked { _counters.genericNacksSent += 1 }
    }

    private func handle(_ pdu: SMPPPDU, _ socket: SMPPSocket) throws(SMPPSocketError) {
        switch pdu.body {
        case .enquireLink:
            try socket.send(SMPPPDU(.enquireLinkResp, sequence: pdu.sequence))
            locked { _counters.enquireLinksAnswered += 1 }
        case .enquireLinkResp, .unbindResp:
            break
        case .deliverSM(let m):
            if m.isDeliveryReceipt {
                try socket.send(SMPPPDU(.deliverSMResp(messageID: ""), sequence: pdu.sequence))
                locked { _counters.deliveryReceipts += 1 }
                return
            }
            guard let (udh, payload) = try? PortAddressedSMS.parse(m.userData, udhi: m.hasUDH) else {
                // A header that overruns its data will not parse on a retry either: reject it for good.
                try socket.send(SMPPPDU(.deliverSMResp(messageID: ""), sequence: pdu.sequence,
                                        status: SMPPStatus.rejectedForGood))
                locked { _counters.badUDH += 1 }
                return
            }
            if locked({ refusing }) {
                try socket.send(SMPPPDU(.deliverSMResp(messageID: ""), sequence: pdu.sequence,
                                        status: SMPPStatus.temporaryAppError))
                locked { _counters.deliveriesRefused += 1 }
                return
            }
            var ack: DeliveryAck?
            if defersAcks {
                let gen = locked { generation }, seq = pdu.sequence
                ack = DeliveryAck { [weak self] status in self?.locked { self?.acks.append((gen, seq, status)) } }
            } else {
                try socket.send(SMPPPDU(.deliverSMResp(messageID: ""), sequence: pdu.sequence))
            }
            locked { _counters.delivered += 1 }
            onDeliver(InboundSMS(originator: (m.sourceTON == 1 ? "+" : "") + m.sourceAddr, destination: m.destAddr,
                                 dataCoding: m.dataCoding, udh: udh, payload: payload), ack)
        case .submitSMResp:
            submitAnswered(pdu)
        case .genericNack:
            locked { _counters.genericNacksReceived += 1 }
            if inflight[pdu.sequence] != nil { submitAnswered(pdu) }
        default:
            locked { _counters.unexpectedPDUs += 1 }
            if !pdu.command.isResponse { try sendNack(socket, status: SMPPStatus.incorrectBindStatus, sequence: pdu.sequence) }
        }
    }

    /// Sends the deferred deliver_sm_resps for this connection; those of an earlier one are dropped.
    private func sendAcks(_ socket: SMPPSocket) throws(SMPPSocketError) {
        let (due, gen) = locked { () -> ([(generation: Int, sequence: UInt32, status: UInt32)], Int) in
            defer { acks.removeAll() }
            return (acks, generation)
        }
        for a in due {
            guard a.generation == gen else { locked { _counters.acksLost += 1 }; continue }
            try socket.send(SMPPPDU(.deliverSMResp(messageID: ""), sequence: a.sequence, status: a.status))
        }
    }

    private func submitAnswered(_ pdu: SMPPPDU) {
        guard let sent = inflight.removeValue(forKey: pdu.sequence) else {
            locked { _counters.unknownResponses += 1 }
            return
        }
        switch pdu.status {
        case SMPPStatus.ok:
            backoff = 0
            locked { _counters.submitsAcked += 1 }
        case SMPPStatus.throttled, SMPPStatus.messageQueueFull:
            backoff = backoff == 0 ? config.throttleBackoff : min(backoff * 2, config.maxBackoff)
            pausedUntil = now() + backoff
            var part = sent.part
            part.notBefore = pausedUntil
            locked { _counters.throttled += 1; _counters.resent += 1; outbox.insert(part, at: 0) }
        default:
            locked { _counters.submitsFailed += 1 }
        }
    }

    private func requeueInflight() {
        let parts = inflight.sorted { $0.key < $1.key }.map { $0.value.part }
        inflight.removeAll()
        guard !parts.isEmpty else { return }
        locked { outbox.insert(contentsOf: parts, at: 0); _counters.resent += parts.count }
    }

    private func nextSequence() -> UInt32 {
        sequence = sequence >= 0x7FFF_FFFF ? 1 : sequence + 1 // §3.2: 0x00000001 to 0x7FFFFFFF
        return sequence
    }

    private func sleepWhileRunning(_ seconds: Double) {
        let end = now() + seconds
        while now() < end, locked({ running }) { usleep(20_000) }
    }

    private func now() -> Double { ProcessInfo.processInfo.systemUptime }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }
}
