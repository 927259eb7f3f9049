import Foundation
import EmulatorSupport
import Gateway
import HandsetCore
import Logging
import ServiceLifecycle
import SMPP

/// Why the daemon could not start, beyond the config file itself.
public enum DaemonStartError: Error, CustomStringConvertible {
    case registry(String)
    case negotiator(String)
    case listen(String)

    public var description: String {
        switch self {
        case .registry(let s): "registry: \(s)"
        case .negotiator(let s): "negotiator: \(s)"
        case .listen(let s): "listen: \(s)"
        }
    }
}

/// Everything the daemon runs, built from a validated config: the registry, the IKE engine, the Gateway core, its
/// UDP carriage, the SMPP side and the HTTP endpoint, run as one ServiceGroup. On SIGTERM or SIGINT the group
/// stops them in reverse order: UDP closes, SMPP drains and unbinds, the core closes the registry, then HTTP.
public final class GatewayDaemon: @unchecked Sendable {
    public let config: DaemonConfig
    public let metrics = GatewayMetrics()
    let log: Logger
    let registry: any RegistryStore
    let gateway: Gateway
    let bridge: SMPPBridge
    let core: CoreService
    let http: HTTPEndpoint
    var udp: KDDatagramService?
    public private(set) var httpPort = 0
    public private(set) var udpPort: Int?

    public init(config: DaemonConfig, logger: Logger) throws {
        self.config = config
        log = logger
        do {
            registry = try RegistryStoreSpec.open(config.registryStore, kek: try KeyEncryptionKey.load(path: config.kek))
        } catch { throw DaemonStartError.registry("\(error)") }
        let negotiator = try Self.negotiator(config.negotiator, registry: registry, logger: logger)
        gateway = Gateway(registry: registry, negotiator: MeasuredNegotiator(negotiator.peer, metrics: metrics),
                          services: DaemonServices(config: config, metrics: metrics, logger: logger),
                          lifetimes: (config.saSoftSeconds, config.saHardSeconds), logger: logger)
        gateway.onPushAcknowledged = negotiator.acknowledged
        var esme = ESMEConfig(host: config.smppHost, port: config.smppPort, systemID: config.smppSystemID,
                              password: config.smppPassword)
        esme.sourceAddr = config.gatewayNumber
        esme.portDst = Int(KD.smsPort)
        esme.portSrc = Int(KD.smsPort)
        esme.outboxCapacity = config.services.smppOutboxCapacity
        bridge = SMPPBridge(gateway: gateway, esme: esme, metrics: metrics, reassemblyLimit: config.reassemblyLimit,
                            reassemblyTimeout: config.reassemblyTimeout, drainTimeout: config.drainTimeout, logger: logger,
                            deviceWorkers: config.deviceWorkers)
        if let u = config.udpListen {
            let bridge = self.bridge
            let service = KDDatagramService(gateway: gateway, serializer: bridge.serializer, metrics: metrics, logger: logger,
                                            sendSMS: { bridge.send($0) })
            do { udpPort = try service.bind(host: u.host, port: Int(u.port)) } catch {
                throw DaemonStartError.listen("udp_listen \(u.host):\(u.port): \(error)")
            }
            udp = service
        }
        core = CoreService(registry: registry, stopNegotiator: negotiator.stop, metrics: metrics, gateway: gateway,
                           logger: logger)
        let bridge = self.bridge, core = self.core, gateway = self.gateway
        let admin = config.services.admin ? AdminRoutes.handler(registry: registry, gateway: gateway, serializer: bridge.serializer,
                                                               send: { bridge.send($0) }) : nil
        http = HTTPEndpoint(host: config.httpListen.host, port: Int(config.httpListen.port), metrics: metrics, logger: logger,
                            ready: { bridge.isBound && core.isOpen }, admin: admin)
        do { httpPort = try http.bind() } catch { throw DaemonStartError.listen("http_listen: \(error)") }
        let serializer = bridge.serializer
        try negotiator.start({ device, transfer in
            serializer.submit(device: device) { bridge.send(gateway.push(device: device, transfer: transfer)) }
        }, { device, outbound, inbound in
            serializer.submit(device: device) {
                bridge.send(gateway.deleteSA(device: device, outboundSPI: outbound, inboundSPI: inbound))
            }
        })
        metrics.registryOpen.record(1)
        let metrics = self.metrics
        let ikeCounters = negotiator.ikeCounters
        metrics.onScrape {
            metrics.observe(gateway.counters)
            if let ikeCounters { metrics.observe(ikeCounters()) }
            bridge.publishGauges()
        }
    }

    /// Runs until SIGTERM or SIGINT, then drains.
    public func run() async throws {
        log.notice("handset-gateway started", metadata: [
            "http": "\(config.httpListen.host):\(httpPort)", "udp": "\(udpPort.map(String.init) ?? "off")",
            "registry": "\(config.registry)", "gateway-number": "\(config.gatewayNumber)",
        ])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [http, core, bridge] + (udp.map { [$0] } ?? []), gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
        try await group.run()
        log.notice("handset-gateway stopped")
    }

    struct BuiltNegotiator {
        var peer: PeerNegotiator
        var stop: @Sendable () -> Void
        /// Starts it, with what the peer starts on its own (a pair it initiated or rekeyed, a pair it deleted)
        /// going to the handset through the Gateway.
        var start: (_ push: @escaping @Sendable (UInt64, KDSATransfer) -> Void,
                    _ delete: @escaping @Sendable (UInt64, UInt32, UInt32) -> Void) throws -> Void = { _, _ in }
        /// The handset's sa-ack of a pushed SA (the strongSwan plugin then ends its hold of a proxy-initiated rekey).
        var acknowledged: (@Sendable (UInt64, UInt32) -> Void)?
        /// The IKE engine's own counters, for /metrics (`gateway_ike_*_total`).
        var ikeCounters: (@Sendable () -> StrongSwanNegotiator.Counters)?
    }

    static func negotiator(_ n: DaemonConfig.Negotiator, registry: any RegistryStore, logger: Logger) throws -> BuiltNegotiator {
        switch n {
        case .socket(let path, let timeout):
            let peer = SocketNegotiator(client: BackendSocketClient(path: path, timeout: timeout), logger: logger)
            return BuiltNegotiator(peer: peer, stop: {})
        case .emulated:
            do {
                let peer = try EmulatedPeer(logger: logger)
                return BuiltNegotiator(peer: peer, stop: { peer.stop() })
            } catch { throw DaemonStartError.negotiator("emulated peer: \(error)") }
        case .strongswan(let s):
            guard let server = IPAddress(dottedQuad: s.serverAddress) else { throw DaemonStartError.negotiator("strongswan_server") }
            var c = StrongSwanNegotiator.Configuration(viciSocket: s.viciSocket, keySocket: s.keySocket, serverAddress: server,
                                                       ikeRemoteAddress: s.ikeRemote, serverID: s.serverID)
            c.ikeRemotePort = s.ikeRemotePort
            c.ikeLocalPort = s.ikeLocalPort
            c.serverESPPort = s.serverESPPort
            c.rekeyTime = s.rekeyTime
            c.virtualIP = s.virtualIP
            if !s.serverCA.isEmpty {
                guard let pem = FileManager.default.contents(atPath: s.serverCA) else {
                    throw DaemonStartError.negotiator("strongswan_server_ca: cannot read \(s.serverCA)")
                }
                c.serverCAs = [Array(pem)]
            }
            let ike = StrongSwanNegotiator(configuration: c, registry: registry, logger: logger)
            return BuiltNegotiator(peer: ike, stop: { ike.stop() }, start: { push, delete in
                ike.onPeerTransfer = push
                ike.onPeerDelete = delete
                do { try ike.start(devices: (try? registry.allDevices().map(\.deviceID)) ?? []) } catch {
                    throw DaemonStartError.negotiator("strongswan: \(error)")
                }
            }, acknowledged: { device, spi in ike.handsetInstalled(device: device, outboundSPI: spi) },
            ikeCounters: { ike.counters })
        }
    }
}

/// The core's lifetime as a service: at shutdown (after UDP and SMPP drained) it stops the IKE engine, publishes
/// the last counters, and closes the registry.
final class CoreService: Service, @unchecked Sendable {
    let registry: any RegistryStore
    let stopNegotiator: @Sendable () -> Void
    let metrics: GatewayMetrics
    let gateway: Gateway
    let log: Logger
    private let lock = NSLock()
    private var open = true

    init(registry: any RegistryStore, stopNegotiator: @escaping @Sendable () -> Void, metrics: GatewayMetrics,
         gateway: Gateway, logger: Logger) {
        self.registry = registry
        self.stopNegotiator = stopNegotiator
        self.metrics = metrics
        self.gateway = gateway
        log = logger
    }

    var isOpen: Bool { lock.withLock { open } }

    func run() async throws {
        try? await gracefulShutdown()  // counters are published on each scrape meanwhile
        stopNegotiator()
        metrics.observe(gateway.counters)
        lock.withLock { open = false }
        metrics.registryOpen.record(0)
        if let sqlite = registry as? DeviceRegistry {
            do { try sqlite.closeDatabase() } catch { log.error("registry close failed", metadata: ["error": "\(error)"]) }
        } else {
            registry.disconnect()
        }
        log.notice("registry closed")
    }
}
