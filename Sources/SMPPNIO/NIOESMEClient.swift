// The gateway's ESME on swift-nio: the same behaviour and counters as the threaded ESMEClient (bind_transceiver,
// a window of submit_sm, ESME_RTHROTTLED back-off, enquire_link, reconnect and re-bind, generic_nack on bad PDUs,
// deferred deliver_sm_resp), with every piece of session state confined to one event loop. A lock guards only the
// counters and the outbox that callers read or fill; it is never held across I/O.
import Foundation
import NIOCore
import NIOPosix
import SMPP

public final class NIOESMEClient: ESMELink, @unchecked Sendable {
    struct Part { var destination: String; var userData: [UInt8]; var notBefore: Double = 0 }

    public let config: ESMEConfig
    let onDeliver: @Sendable (InboundSMS, DeliveryAck?) -> Void
    let defersAcks: Bool
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop: EventLoop
    private let lock = NSLock()
    private var outbox: [Part] = []
    private var tally = ESMECounters()
    private var bound = false
    private var refusing = false
    private var nextReference: UInt16 = 1
    // On `loop` only.
    private var running = false
    private var stopping: EventLoopPromise<Void>?
    private var channel: Channel?
    private var generation = 0
    private var bindSequence: UInt32 = 0
    private var bindDeadline: Double = 0
    private var unbindSequence: UInt32 = 0
    private var inflight: [UInt32: (part: Part, sentAt: Double)] = [:]
    private var sequence: UInt32 = 0
    private var backoff: Double = 0
    private var pausedUntil: Double = 0
    private var lastLink: Double = 0
    private var ticker: RepeatedTask?
    private var attempts = 0
    private var stopped = false  // under `lock`: stop() ran (the loop is gone)

    /// Each deliver_sm is acknowledged as it arrives, before `onDeliver` runs.
    public init(config: ESMEConfig, onDeliver: @escaping @Sendable (InboundSMS) -> Void) {
        self.config = config
        self.onDeliver = { sms, _ in onDeliver(sms) }
        defersAcks = false
        loop = group.next()
    }

    /// Each deliver_sm is acknowledged only when `onDeliver` calls its `DeliveryAck` (from any thread).
    /// `onDeliver` runs on the event loop: hand work off.
    public init(config: ESMEConfig, deferringAcks onDeliver: @escaping @Sendable (InboundSMS, DeliveryAck) -> Void) {
        self.config = config
        self.onDeliver = { sms, ack in onDeliver(sms, ack!) }
        defersAcks = true
        loop = group.next()
    }

    public var counters: ESMECounters { lock.withLock { tally } }
    public var isBound: Bool { lock.withLock { bound } }
    public var pendingParts: Int { lock.withLock { outbox.count } }
    public func refuseDeliveries() { lock.withLock { refusing = true } }

    public func start() {
        loop.execute { [self] in
            guard !running, stopping == nil else { return }
            running = true
            ticker = loop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { [self] _ in tick() }
            connect()
        }
    }

    /// Unbinds if bound (waiting at most a second for unbind_resp), closes the link and the event loop.
    public func stop() {
        guard lock.withLock({ () -> Bool in defer { stopped = true }; return !stopped }) else { return }
        let done = loop.makePromise(of: Void.self)
        loop.execute { [self] in
            guard running else { return done.succeed(()) }
            running = false
            stopping = done
            if let c = channel, isBound {
                unbindSequence = nextSequence()
                write(SMPPPDU(.unbind, sequence: unbindSequence), on: c)
                loop.scheduleTask(in: .seconds(1)) { [self] in finishStop() }
            } else {
                finishStop()
            }
        }
        try? done.futureResult.wait()
        try? group.syncShutdownGracefully()
    }

    private func finishStop() {
        ticker?.cancel()
        ticker = nil
        let closing = channel?.close() ?? loop.makeSucceededVoidFuture()
        channel = nil
        lock.withLock { bound = false }
        closing.whenComplete { [self] _ in stopping?.succeed(()); stopping = nil }
    }

    @discardableResult
    public func send(to destination: String, payload: [UInt8]) throws(ESMESendError) -> Int {
        let ref = lock.withLock { () -> UInt16 in defer { nextReference &+= 1 }; return nextReference }
        let parts: [[UInt8]]
        do { parts = try PortAddressedSMS.parts(payload, portDst: config.portDst, portSrc: config.portSrc, reference: ref) } catch {
            throw .udh(error)
        }
        let queued = lock.withLock { () -> Bool in
            guard outbox.count + parts.count <= config.outboxCapacity else { tally.outboxRefused += 1; return false }
            outbox += parts.map { Part(destination: destination, userData: $0) }
            return true
        }
        guard queued else { throw .outboxFull(capacity: config.outboxCapacity) }
        loop.execute { [self] in fillWindow() }
        return parts.count
    }

    // MARK: On the event loop

    private func connect() {
        guard running else { return }
        if attempts > 0 { count { $0.reconnects += 1 } }
        attempts += 1
        let client = self
        ClientBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMPPFrameDecoder()))
                    try ch.pipeline.syncOperations.addHandler(Receiver(client: client))
                }
            }
            .connect(host: config.host, port: config.port)
            .whenComplete { [self] result in
                switch result {
                case .failure:
                    count { $0.connectFailures += 1 }
                    retryLater()
                case .success(let ch):
                    guard running else { ch.close(promise: nil); return }
                    channel = ch
                    generation += 1
                    count { $0.connects += 1 }
                    bindSequence = nextSequence()
                    bindDeadline = now() + config.responseTimeout
                    var b = SMPPBind(systemID: config.systemID, password: config.password, systemType: config.systemType)
                    b.addressRange = ""
                    write(SMPPPDU(.bindTransceiver(b), sequence: bindSequence), on: ch)
                }
            }
    }

    private func retryLater() {
        guard running else { return }
        loop.scheduleTask(in: .milliseconds(Int64(config.reconnectDelay * 1000))) { [self] in connect() }
    }

    /// The link is gone: what was in flight goes back to the front of the outbox, and a new link is tried.
    func linkDown(_ ch: Channel) {
        guard ch === channel else { return }
        channel = nil
        lock.withLock { bound = false }
        if bindSequence != 0 { count { $0.bindFailures += 1 }; bindSequence = 0 }
        let parts = inflight.sorted { $0.key < $1.key }.map { $0.value.part }
        inflight.removeAll()
        if !parts.isEmpty { lock.withLock { outbox.insert(contentsOf: parts, at: 0); tally.resent += parts.count } }
        retryLater()
    }

    private func tick() {
        guard let ch = channel else { return }
        let t = now()
        if bindSequence != 0 {
            if t > bindDeadline { ch.close(promise: nil) }  // counted as a bind failure by linkDown
            return
        }
        guard isBound else { return }
        if inflight.values.contains(where: { t - $0.sentAt > config.responseTimeout }) {
            count { $0.responseTimeouts += 1 }
            ch.close(promise: nil)
            return
        }
        if t - lastLink >= config.enquireLinkInterval {
            write(SMPPPDU(.enquireLink, sequence: nextSequence()), on: ch)
            count { $0.enquireLinksSent += 1 }
            lastLink = t
        }
        fillWindow()
    }

    private func fillWindow() {
        guard let ch = channel, isBound, now() >= pausedUntil else { return }
        let t = now()
        while inflight.count < config.window {
            let part: Part? = lock.withLock {
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
            inflight[seq] = (part, t)
            write(SMPPPDU(.submitSM(m), sequence: seq), on: ch)
            count { $0.submitsSent += 1 }
        }
    }

    /// One frame from the decoder: decoded, or counted and answered with generic_nack.
    func received(_ bytes: [UInt8], on ch: Channel) {
        guard ch === channel else { return }
        lastLink = now()
        let pdu: SMPPPDU
        do { pdu = try SMPPPDU.decode(bytes) } catch {
            count { $0.malformed[error, default: 0] += 1; $0.genericNacksSent += 1 }
            let seq = (try? SMPPPDU.header(bytes))?.sequence ?? 0
            let status = if case .unknownCommand = error { SMPPStatus.invalidCommandID } else { SMPPStatus.invalidMessageLength }
            write(SMPPPDU(.genericNack, sequence: seq, status: status), on: ch)
            return
        }
        switch pdu.body {
        case .bindTransceiverResp where bindSequence != 0 && pdu.sequence == bindSequence:
            bindSequence = 0
            guard pdu.status == SMPPStatus.ok else {
                count { $0.bindFailures += 1 }
                ch.close(promise: nil)
                return
            }
            count { $0.binds += 1 }
            lock.withLock { bound = true }
            lastLink = now()
            attempts = 1
            fillWindow()
        case .unbindResp where pdu.sequence == unbindSequence && stopping != nil:
            finishStop()
        case .unbind:
            write(SMPPPDU(.unbindResp, sequence: pdu.sequence), on: ch)
            count { $0.unbindsReceived += 1 }
            ch.close(promise: nil)
        case .enquireLink:
            write(SMPPPDU(.enquireLinkResp, sequence: pdu.sequence), on: ch)
            count { $0.enquireLinksAnswered += 1 }
        case .enquireLinkResp, .unbindResp:
            break
        case .deliverSM(let m):
            deliver(m, sequence: pdu.sequence, on: ch)
        case .submitSMResp:
            submitAnswered(pdu)
        case .genericNack:
            count { $0.genericNacksReceived += 1 }
            if inflight[pdu.sequence] != nil { submitAnswered(pdu) }
        default:
            count { $0.unexpectedPDUs += 1 }
            if !pdu.command.isResponse {
                count { $0.genericNacksSent += 1 }
                write(SMPPPDU(.genericNack, sequence: pdu.sequence, status: SMPPStatus.incorrectBindStatus), on: ch)
            }
        }
    }

    /// A frame header the decoder refused: counted, answered, and the stream is lost (the link closes).
    func badFrame(_ error: SMPPError, on ch: Channel) {
        count { $0.malformed[error, default: 0] += 1; $0.genericNacksSent += 1 }
        write(SMPPPDU(.genericNack, sequence: 0, status: SMPPStatus.invalidCommandLength), on: ch)
        ch.close(promise: nil)
    }

    private func deliver(_ m: SMPPShortMessage, sequence seq: UInt32, on ch: Channel) {
        func answer(_ status: UInt32) { write(SMPPPDU(.deliverSMResp(messageID: ""), sequence: seq, status: status), on: ch) }
        if m.isDeliveryReceipt {
            answer(SMPPStatus.ok)
            count { $0.deliveryReceipts += 1 }
            return
        }
        guard let (udh, payload) = try? PortAddressedSMS.parse(m.userData, udhi: m.hasUDH) else {
            answer(SMPPStatus.rejectedForGood)  // a header that overruns its data will not parse on a retry either
            count { $0.badUDH += 1 }
            return
        }
        if lock.withLock({ refusing }) {
            answer(SMPPStatus.temporaryAppError)
            count { $0.deliveriesRefused += 1 }
            return
        }
        var ack: DeliveryAck?
        if defersAcks {
            let gen = generation
            ack = DeliveryAck { [self] status in
                loop.execute { [self] in
                    guard gen == generation, let c = channel else { return count { $0.acksLost += 1 } }
                    write(SMPPPDU(.deliverSMResp(messageID: ""), sequence: seq, status: status), on: c)
                }
            }
        } else {
            answer(SMPPStatus.ok)
        }
        count { $0.delivered += 1 }
        onDeliver(InboundSMS(originator: (m.sourceTON == 1 ? "+" : "") + m.sourceAddr, destination: m.destAddr,
                             dataCoding: m.dataCoding, udh: udh, payload: payload), ack)
    }

    private func submitAnswered(_ pdu: SMPPPDU) {
        guard let sent = inflight.removeValue(forKey: pdu.sequence) else {
            count { $0.unknownResponses += 1 }
            return
        }
        switch pdu.status {
        case SMPPStatus.ok:
            backoff = 0
            count { $0.submitsAcked += 1 }
        case SMPPStatus.throttled, SMPPStatus.messageQueueFull:
            backoff = backoff == 0 ? config.throttleBackoff : min(backoff * 2, config.maxBackoff)
            pausedUntil = now() + backoff
            var part = sent.part
            part.notBefore = pausedUntil
            lock.withLock { tally.throttled += 1; tally.resent += 1; outbox.insert(part, at: 0) }
        default:
            count { $0.submitsFailed += 1 }
        }
        fillWindow()
    }

    private func write(_ pdu: SMPPPDU, on ch: Channel) {
        ch.writeAndFlush(ch.allocator.buffer(bytes: pdu.encode()), promise: nil)
    }

    private func nextSequence() -> UInt32 {
        sequence = sequence >= 0x7FFF_FFFF ? 1 : sequence + 1  // §3.2: 0x00000001 to 0x7FFFFFFF
        return sequence
    }

    private func count(_ change: (inout ESMECounters) -> Void) { lock.withLock { change(&tally) } }
    private func now() -> Double { ProcessInfo.processInfo.systemUptime }

    /// Frames in, to the client on the loop; the link's end, to `linkDown`.
    final class Receiver: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = FrameOrError
        let client: NIOESMEClient
        init(client: NIOESMEClient) { self.client = client }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .frame(let bytes): client.received(bytes, on: context.channel)
            case .bad(let e): client.badFrame(e, on: context.channel)
            }
        }
        func channelInactive(context: ChannelHandlerContext) { client.linkDown(context.channel) }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    }
}

enum FrameOrError { case frame([UInt8]), bad(SMPPError) }

/// Splits the stream into PDUs by command_length (§3.2), checking the header before waiting for a body: a length
/// under 16 or over SMPPLimits.maxPDULength is reported once and the rest of the stream dropped.
struct SMPPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = FrameOrError
    var lost = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if lost { buffer.moveReaderIndex(forwardBy: buffer.readableBytes); return .needMoreData }
        guard buffer.readableBytes >= SMPPLimits.headerLength,
              let head = buffer.getBytes(at: buffer.readerIndex, length: SMPPLimits.headerLength) else { return .needMoreData }
        let h: SMPPPDU.Header
        do { h = try SMPPPDU.header(head) } catch {
            lost = true
            context.fireChannelRead(wrapInboundOut(.bad(error)))
            return .continue
        }
        guard buffer.readableBytes >= Int(h.length), let bytes = buffer.readBytes(length: Int(h.length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(.frame(bytes)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
