// The public face of the simulator: a module on a pseudo-terminal plus its network (SMS centre, UDP bridge).
// All state lives on one serial queue; output is paced on a second queue (slow-link) so the engine never sleeps.
import Foundation
import Logging

/// The SMS centre's SMPP listener.
public struct SMPPOptions: Sendable {
    public var port: Int                 // 0 picks a free one
    public var password: String?         // nil: any bind is accepted
    public var gatewayNumber: String?    // nil: every MO SMS goes out as deliver_sm
    public init(port: Int = 0, password: String? = nil, gatewayNumber: String? = nil) {
        self.port = port; self.password = password; self.gatewayNumber = gatewayNumber
    }
}

public final class ModemSimulator: @unchecked Sendable {
    public let profile: ModemProfile
    public let linkPath: String?
    public private(set) var slavePath = ""
    public private(set) var smsControlPort: Int?
    public private(set) var smppPort: Int?

    private let queue = DispatchQueue(label: "modemsim.engine")
    private let writer = DispatchQueue(label: "modemsim.writer")
    private let logger: Logger
    private let requestedSMSPort: Int?
    private let smpp: SMPPOptions?
    private let packetGatewayConfig: PacketGatewayConfig?
    private var relay: PacketGateway?
    private var pty: PseudoTerminal?
    private var readSource: DispatchSourceRead?
    private var engine: ModemEngine!
    private var centre: SMSCentre!
    private let events: @Sendable (NetworkEvent) -> Void
    private let trace: (@Sendable (ATTraceLine) -> Void)?
    private var traceSplitter = ATTraceSplitter()

    /// - Parameters:
    ///   - linkPath: symlink to create for the pty slave (nil: only `slavePath`).
    ///   - smsPort: UDP control port of the SMS centre on 127.0.0.1 (0 picks one, nil disables it).
    ///   - smpp: the SMS centre also listens for SMPP 3.4 ESMEs on 127.0.0.1 (nil: no SMPP).
    ///   - packetGateway: the handset's public UDP endpoint, shared by the proxy's IKE and the handset's ESP
    ///     (nil: module sockets are bridged on loopback only).
    ///   - events: receives every network event; `ModemSimulator.stdoutEvents` prints them as JSON lines.
    ///   - trace: receives every AT line either way (on the simulator's queue), for `--trace`.
    public init(profile: ModemProfile, linkPath: String?, faults: FaultPlan = FaultPlan(), smsPort: Int? = nil,
                smpp: SMPPOptions? = nil, packetGateway: PacketGatewayConfig? = nil,
                identity: SubscriberIdentity = SubscriberIdentity(), timing: SimTiming = SimTiming(),
                logger: Logger = Logger(label: "modemsim"),
                events: @escaping @Sendable (NetworkEvent) -> Void = ModemSimulator.stdoutEvents,
                trace: (@Sendable (ATTraceLine) -> Void)? = nil) {
        self.profile = profile
        self.linkPath = linkPath
        self.logger = logger
        self.requestedSMSPort = smsPort
        self.smpp = smpp
        self.packetGatewayConfig = packetGateway
        self.events = events
        self.trace = trace
        let emit: (NetworkEvent) -> Void = { [events] e in events(e) }
        engine = ModemEngine(profile: profile, identity: identity, faults: faults, timing: timing, queue: queue,
                             logger: logger, output: { [weak self] bytes in self?.send(bytes) }, emit: emit)
        centre = SMSCentre(engine: engine, emit: emit)
        if trace != nil { engine.trace = { [weak self] line in self?.traceFromHost(line) } }
    }

    /// A pending prompt goes first: the host answered it.
    private func traceFromHost(_ line: ATTraceLine) {
        guard let trace else { return }
        if let prompt = traceSplitter.flush() { trace(prompt) }
        trace(line)
    }

    public static let stdoutEvents: @Sendable (NetworkEvent) -> Void = {
        let writer = StdoutEventWriter()
        return { writer.write($0) }
    }()

    public func start() throws {
        let p = try PseudoTerminal(linkPath: linkPath)
        pty = p
        slavePath = p.slavePath
        if let port = requestedSMSPort { smsControlPort = try centre.listen(port: port) }
        if let smpp {
            try queue.sync {
                centre.smppNumber = smpp.gatewayNumber
                smppPort = try centre.listenSMPP(port: smpp.port, password: smpp.password)
            }
        }
        if let config = packetGatewayConfig { try startPacketGateway(config) }
        let src = DispatchSource.makeReadSource(fileDescriptor: p.master, queue: queue)
        src.setEventHandler { [weak self] in
            let bytes = p.readAvailable()
            if !bytes.isEmpty { self?.engine.receive(bytes) }
        }
        // Close the descriptors only once the source lets go of them: a number closed earlier can be
        // reused at once by the next pty, whose input this source would then steal.
        src.setCancelHandler { p.closeDescriptors() }
        readSource = src
        src.resume()
        logger.info("modem simulator up", metadata: ["profile": "\(profile.name)", "pty": "\(p.slavePath)",
                                                      "link": "\(linkPath ?? "-")"])
        queue.sync { engine.powerOn() }
    }

    /// The relay runs on the engine's queue, so it reaches module sockets without a hop.
    private func startPacketGateway(_ config: PacketGatewayConfig) throws {
        let engine = self.engine!
        let r = try PacketGateway(config: config, queue: queue) { [weak engine] bytes, from in
            engine?.deliverFromPacketGateway(bytes, from: from) ?? false
        }
        r.onWire = packetGatewayTap
        relay = r
        queue.sync {
            engine.packetGateway = r
            engine.emit(NetworkEvent("packet-gateway", [("public", .string(r.publicSide.description)),
                                                        ("proxy-side", .string(r.proxySide.description)),
                                                        ("ike-proxy", .string(config.ikeProxy.description)),
                                                        ("opposite-party", .string(config.oppositeParty.description))]))
        }
        logger.info("packet gateway up", metadata: ["public": "\(r.publicSide)", "proxy-side": "\(r.proxySide)"])
    }

    public func stop() {
        let source: DispatchSourceRead? = queue.sync {
            relay?.close()
            engine.packetGateway = nil
            engine.shutdown()
            centre.close()
            pty?.removeLink()
            pty = nil
            defer { readSource = nil }
            return readSource
        }
        writer.sync {} // drain pending output before the descriptor goes
        source?.cancel()
    }

    private func send(_ bytes: [UInt8]) {
        guard let p = pty, !bytes.isEmpty else { return }
        if let trace { for line in traceSplitter.module(bytes) { trace(line) } }
        let baud = engine.faults.isArmed(.slowLink) ? engine.faults.value(of: .slowLink) : nil
        writer.async {
            guard let baud, baud > 0 else { p.writeAll(bytes); return }
            // 10 bits per byte on the wire; write in ~10 ms slices.
            let slice = max(1, baud / 1000)
            var i = 0
            while i < bytes.count {
                let end = min(i + slice, bytes.count)
                p.writeAll(Array(bytes[i..<end]))
                usleep(useconds_t(Double(end - i) * 10 / Double(baud) * 1_000_000))
                i = end
            }
        }
    }

    // MARK: Network-side API (thread-safe; each call runs on the simulator queue)

    /// The SMS centre delivers a text to the module (GSM 7-bit if possible, else UCS-2; concatenated when long).
    @discardableResult
    public func deliverSMS(from sender: String, text: String, order: DeliveryOrder = .inOrder,
                           duplicate: Bool = false) -> Int {
        queue.sync { centre.deliver(from: sender, body: .text(text), order: order, duplicate: duplicate).parts }
    }

    /// The SMS centre delivers 8-bit data, optionally port-addressed (16-bit ports).
    @discardableResult
    public func deliverSMS(from sender: String, data: [UInt8], portDst: Int? = nil, portSrc: Int? = nil,
                           order: DeliveryOrder = .inOrder, duplicate: Bool = false) -> Int {
        queue.sync {
            centre.deliver(from: sender, body: .data(data), portDst: portDst, portSrc: portSrc, order: order,
                           duplicate: duplicate).parts
        }
    }

    /// What the SMS centre's SMPP side has seen (zero without SMPP).
    public var smppCounters: SMPPServiceCounters { queue.sync { centre.smpp?.counters ?? SMPPServiceCounters() } }

    /// MO SMS the SMS centre holds for want of a bound ESME.
    public var smppHeld: Int { queue.sync { centre.smpp?.heldCount ?? 0 } }

    /// ESMEs bound to the SMS centre now.
    public var smppBoundSessions: Int { queue.sync { centre.smpp?.boundSessions ?? 0 } }

    /// Parts the SMS centre still holds because the module could not take them.
    public var pendingSMS: Int { queue.sync { centre.pendingCount } }

    public func setRegistration(_ stat: Int) {
        queue.sync {
            engine.setRegistration(stat, report: true)
            if engine.isRegistered { centre.flush() }
        }
    }

    public func closeSocketFromNetwork(_ id: Int) { queue.sync { engine.closeSocket(id, byNetwork: true) } }

    public func reboot() { queue.sync { engine.reboot(reason: "api") } }

    public func setFault(_ rule: FaultRule) { queue.sync { engine.faults.add(rule) } }

    public func clearFault(_ kind: FaultKind) { queue.sync { engine.faults.remove(kind) } }

    public func faultCount(_ kind: FaultKind) -> Int { queue.sync { engine.faults.fired[kind] ?? 0 } }

    /// The handset's public endpoint as the relay bound it (nil without a packet gateway).
    public var packetGatewayPublicSide: UDPPeer? { relay?.publicSide }

    /// The relay's endpoint facing the proxy charon (nil without a packet gateway).
    public var packetGatewayProxySide: UDPPeer? { relay?.proxySide }

    /// What the packet gateway carried and dropped (nil without one).
    public var packetGatewayCounters: PacketGatewayCounters? { relay?.counters }
    /// The packet gateway's public-side datagrams (PacketGateway.onWire), for a capture; set before `start`.
    public var packetGatewayTap: (@Sendable (_ toServer: Bool, _ bytes: [UInt8], _ server: UDPPeer) -> Void)?

    /// Local UDP port behind module socket `id`, if open.
    public func socketPort(_ id: Int) -> Int? { queue.sync { engine.sockets[id]?.endpoint.port } }

    /// Number of SMS in storage.
    public var storedSMS: Int { queue.sync { engine.storage.compactMap { $0 }.count } }

    /// What the module refused or dropped so far.
    public var counters: SimCounters { queue.sync { engine.counters } }
}
