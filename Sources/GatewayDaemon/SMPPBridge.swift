import Foundation
import Gateway
import HandsetCore
import Logging
import ServiceLifecycle
import SMPP
import SMPPNIO

/// The gateway's SMS side: an ESME bound as a transceiver (the swift-nio one, NIOESMEClient). Each deliver_sm on the key-delegation port is put back
/// together (bounded), handed to the Gateway on its device's queue, and acknowledged only after the Gateway
/// handled it; the answers go out as submit_sm. On graceful shutdown it drains: new deliveries are refused with
/// a temporary error, in-flight messages finish, queued downlinks go out, then it unbinds.
public final class SMPPBridge: Service, @unchecked Sendable {
    let gateway: Gateway
    let metrics: GatewayMetrics
    let log: Logger
    let drainTimeout: Double
    let serializer: DeviceSerializer
    private(set) var esme: (any ESMELink)!
    private let lock = NSLock()
    private var reassembly: UplinkReassembly<Pending>
    /// SMS not on the key-delegation port: acknowledged (they are not ours to keep) and counted.
    private(set) var ignored = 0
    /// The link state last logged (touched by `tick` only).
    private var loggedBound = false

    struct Pending { var ack: DeliveryAck; var arrived: Double }

    public init(gateway: Gateway, esme config: ESMEConfig, metrics: GatewayMetrics, reassemblyLimit: Int,
                reassemblyTimeout: Double, drainTimeout: Double, logger: Logger, deviceWorkers: Int = 64,
                threadedESME: Bool = false) {
        serializer = DeviceSerializer(maxWorkers: deviceWorkers)
        self.gateway = gateway
        self.metrics = metrics
        log = logger
        self.drainTimeout = drainTimeout
        reassembly = UplinkReassembly(limit: reassemblyLimit, timeout: reassemblyTimeout)
        let take: @Sendable (InboundSMS, DeliveryAck) -> Void = { [weak self] sms, ack in self?.take(sms, ack) }
        // The threaded ESMEClient stays as a fallback (and is tested through this bridge too).
        esme = threadedESME ? ESMEClient(config: config, deferringAcks: take) : NIOESMEClient(config: config, deferringAcks: take)
    }

    public var isBound: Bool { esme.isBound }

    /// Sends the gateway's answers (SMS carriage) as port-addressed binary SMS.
    public func send(_ downlinks: [Downlink]) {
        for d in downlinks where d.carriage == .sms {
            do { try esme.send(to: d.msisdn, payload: d.bytes) } catch .outboxFull(let capacity) {
                // Refused, not queued: counted (gateway_smpp_outbox_refused_total); the handset asks again.
                log.warning("SMPP outbox full: downlink refused", metadata: ["to": "\(d.msisdn)", "capacity": "\(capacity)"])
            } catch {
                log.error("downlink not sent", metadata: ["to": "\(d.msisdn)", "error": "\(error)"])
            }
        }
    }

    public func run() async throws {
        esme.start()
        log.notice("SMPP client started", metadata: ["smsc": "\(esme.config.host):\(esme.config.port)",
                                                      "system-id": "\(esme.config.systemID)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            tick()
        }
        await drain()
    }

    /// Evicts stale partial messages and refreshes the gauges.
    func tick() {
        let stale = lock.withLock { reassembly.evictExpired(now: Self.now()) }
        refuse(stale, why: "concatenated uplink timed out")
        metrics.recordEvicted(parts: stale.count)
        publishGauges()
        if esme.isBound != loggedBound {
            loggedBound.toggle()
            let c = esme.counters
            log.notice(loggedBound ? "SMPP bound" : "SMPP link down", metadata: [
                "binds": "\(c.binds)", "bind-failures": "\(c.bindFailures)", "connect-failures": "\(c.connectFailures)",
            ])
        }
    }

    func publishGauges() {
        metrics.smppBound.record(esme.isBound ? 1 : 0)
        metrics.inFlight.record(serializer.pending)
        metrics.devicesWaiting.record(serializer.waitingDevices)
        metrics.outboxParts.record(esme.pendingParts)
        metrics.reassemblyIncomplete.record(lock.withLock { reassembly.incomplete })
        metrics.observe(esme.counters)
    }

    func drain() async {
        log.notice("draining: refusing new deliveries", metadata: ["in-flight": "\(serializer.pending)"])
        esme.refuseDeliveries()
        // Polled, not waited on: blocking here would hold one of the few threads Swift's tasks share.
        let deadline = Self.now() + drainTimeout
        while Self.now() < deadline, serializer.pending > 0 { try? await Task.sleep(for: .milliseconds(20)) }
        let finished = serializer.pending == 0
        refuse(lock.withLock { reassembly.removeAll() }, why: "incomplete at shutdown")
        while Self.now() < deadline, !downlinksSettled() { try? await Task.sleep(for: .milliseconds(50)) }
        if !finished || !downlinksSettled() {
            // Which devices' work never finished, and for how long it has run: a hung worker shows here.
            let busy = serializer.busy().prefix(5).map { String(format: "device %llu running %.1f s, %d queued", $0.device, $0.seconds, $0.queued) }
            log.warning("drain timed out; unbinding with work left", metadata: [
                "in-flight": "\(serializer.pending)", "busy": "\(busy.joined(separator: "; "))",
                "outbox-parts": "\(esme.pendingParts)",
            ])
        }
        let esme = esme!
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread { esme.stop(); done.resume() }.start()  // stop() blocks until unbound
        }
        metrics.smppBound.record(0)
        metrics.observe(esme.counters)
        log.notice("SMPP unbound", metadata: ["submits-acked": "\(esme.counters.submitsAcked)"])
    }

    /// Every queued part sent and answered.
    func downlinksSettled() -> Bool {
        let c = esme.counters
        return esme.pendingParts == 0 && c.submitsSent - c.submitsAcked - c.submitsFailed - c.resent <= 0
    }

    /// On the ESME's I/O thread: only bookkeeping here; the Gateway runs on the device's queue.
    func take(_ sms: InboundSMS, _ ack: DeliveryAck) {
        guard sms.udh.portDst == Int(KD.smsPort) else {
            lock.withLock { ignored += 1 }
            log.info("SMS not for key delegation ignored", metadata: ["from": "\(sms.originator)"])
            ack()
            return
        }
        let now = Self.now()
        let (outcome, dropped) = lock.withLock {
            reassembly.add(sms.udh, payload: sms.payload, from: sms.originator, token: Pending(ack: ack, arrived: now), now: now)
        }
        refuse(dropped, why: "reassembly full; oldest incomplete message dropped")
        metrics.recordEvicted(parts: dropped.count)
        switch outcome {
        case .stored: return
        case .invalid(let p):
            log.notice("concatenated part refused", metadata: ["from": "\(sms.originator)"])
            p.ack(SMPPStatus.rejectedForGood)
        case .complete(let message, let parts):
            // Unparseable messages still go to the Gateway, which counts them; they queue as device 0.
            let header = message.withUnsafeBytes { KDHeader.parse($0, direction: .up) }
            let type = header.map { "\($0.type)" } ?? "malformed"
            serializer.submit(device: header?.deviceID ?? 0) { [self] in handle(message, type: type, parts: parts, arrived: now) }
        }
    }

    func handle(_ message: [UInt8], type: String, parts: [Pending], arrived: Double) {
        let start = Self.now()
        let storeFailuresBefore = gateway.counters.storeFailures
        let answers = gateway.handleUplink(message, via: .sms)
        metrics.recordMessage(type: type, seconds: Self.now() - start)
        send(answers)
        // The registry could not be reached (PostgreSQL restarting): handed back, so the SMS centre delivers it again
        // once it is back. Had its counter been committed before the failure, the new delivery is refused as a replay.
        let storeDown = answers.isEmpty && gateway.counters.storeFailures > storeFailuresBefore
        for p in parts { p.ack(storeDown ? SMPPStatus.temporaryAppError : SMPPStatus.ok) }
        log.debug("uplink handled", metadata: ["type": "\(type)", "parts": "\(parts.count)", "answers": "\(answers.count)"])
        metrics.recordRoundTrip(seconds: Self.now() - arrived)
        metrics.observe(gateway.counters)
    }

    /// Answers held parts with a temporary error: the SMSC keeps them and delivers them again later.
    func refuse(_ parts: [Pending], why: String) {
        guard !parts.isEmpty else { return }
        log.notice("uplink parts handed back to the SMSC", metadata: ["parts": "\(parts.count)", "why": "\(why)"])
        for p in parts { p.ack(SMPPStatus.temporaryAppError) }
    }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }
}
