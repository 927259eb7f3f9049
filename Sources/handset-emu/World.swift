import Foundation
import EmulatorSupport
import Gateway
import HandsetCore
import Logging
import ModemSim

/// The emulated world around one firmware process: modem simulator (pty), SMS centre, gateway with its SQLite
/// registry, opposite party on loopback, and an application on the firmware's local datagram interface.
///
/// The gateway is `handset-gateway` as its own process (`daemon`) when a daemon path is given: bound over SMPP to
/// the SMS centre, its secret service reached over the back-end socket this world serves, its opposite party over
/// that socket too or, with `--server strongswan`, the lab's proxy charon (`negotiator = strongswan`). Else
/// (`torture`, and `--server strongswan --keylog`: the keylog taps the IKE engine's key records) it is the Gateway
/// in this process, and `gateway`, `registry` and `kdUDP` are set; they are nil with a daemon.
final class EmulatedWorld: @unchecked Sendable {
    static let gatewayNumber = "+15550199"
    let dir: URL
    let sim: ModemSimulator
    let registry: DeviceRegistry!
    let peer: EmulatedPeer
    let gateway: Gateway!
    /// The gateway's key-delegation UDP port (used when SMS is unavailable, docs/key-delegation.md §1).
    let kdUDP: GatewayUDPListener!
    let services: EmuServices
    /// `handset-gateway` and the back end it talks to (daemon mode).
    private(set) var daemon: GatewayProcess?
    private(set) var backend: BackendSocketServer?
    /// The https test server's certificate and key (the daemon's `fetch_ca_file`), made at start in daemon mode.
    private(set) var fetchCertificate: (cert: String, key: String)?
    /// How the scenarios reach the gateway, wherever it runs.
    private(set) var gw: GatewayAccess!
    var gatewayUDPPort: Int { daemon?.udpPort ?? Int(kdUDP.port) }
    let app: AppClient
    let capture: Capture
    let deviceID: UInt64 = 0x4853_0000_0000_0001
    let handsetAddress: IPAddress
    /// With `--server strongswan`: the lab (its owner takes it down), and the in-process gateway's IKE engine
    /// (World+StrongSwan.swift; nil with the daemon).
    let lab: IKELabSession?
    let ike: StrongSwanNegotiator?
    /// The firmware's app socket (`app_socket`).
    let appSocket: String
    var firmware: Process?
    let firmwareLog: URL
    let queue = DispatchQueue(label: "world.gateway")
    let lock = NSLock()
    var uplinkParts: [Int: [Int: [UInt8]]] = [:]
    private(set) var stats = WorldStats()
    var log: Logger
    let trace: Bool
    /// The firmware's TUN interface (`--tun`, root only); the operator's part is done by the tun scenario.
    var tunName: String?

    struct WorldStats {
        var smsUp = 0, smsDown = 0, smsUpParts = 0, smsDownParts = 0, registered = false
    }

    /// Taps for `torture`: every network event, and every key-delegation message as carried (up: from the handset).
    var onEvent: (@Sendable (NetworkEvent) -> Void)?
    var onKeyDelegation: (@Sendable (_ up: Bool, _ bytes: [UInt8]) -> Void)?
    /// The firmware's `dialect` setting (`auto`: detected from the simulator's answers).
    var firmwareDialect = "auto"

    /// `--profile` of run and torture: a simulator profile with sockets, or `sim800-single`, the sim800 simulator
    /// with the firmware set to single-connection mode (docs/firmware.md, SIM800 modes).
    static let profileNames = ["simcom", "quectel", "ublox", "sim800", "sim800-single"]

    static func profile(named name: String) -> (ModemProfile, dialect: String)? {
        if name == "sim800-single" { return (.sim800, name) }
        guard profileNames.contains(name), let p = ModemProfile.named(name) else { return nil }
        return (p, "auto")
    }

    init(profile: ModemProfile, faults: FaultPlan, trace: Bool, pcap: String?, keylog: String?, logger: Logger,
         timing: SimTiming = SimTiming(), packetGateway: PacketGatewayConfig? = nil, lab: IKELabSession? = nil,
         gatewayDaemon: String? = nil) throws {
        let useDaemon = gatewayDaemon != nil && (lab == nil || keylog == nil)
        log = logger
        self.trace = trace
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("handset-emu-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var packetGateway = packetGateway
        self.lab = lab
        if let lab {
            handsetAddress = lab.serverConfig?.handsetAddress ?? Self.strongSwanHandsetAddress
            packetGateway = lab.packetGateway(proxySidePort: IKELabSession.freeUDPPort())
        } else {
            handsetAddress = IPAddress(10, 0, 0, 2)
        }
        firmwareLog = dir.appendingPathComponent("firmware.log")
        capture = try Capture(pcap: pcap, keylog: keylog, ike: lab != nil)
        let kekPath = dir.appendingPathComponent("registry.kek").path
        let registryPath = dir.appendingPathComponent("registry.sqlite").path
        peer = try EmulatedPeer(logger: logger)
        services = EmuServices()
        let box = WorldBox()
        if useDaemon {
            registry = nil
            ike = nil
            gateway = nil
            kdUDP = nil
        } else {
            registry = try DeviceRegistry(path: registryPath, kek: try KeyEncryptionKey.loadOrCreate(path: kekPath))
            if let lab, let packetGateway {
                ike = try Self.negotiator(lab: lab, relay: packetGateway, registry: registry, logger: logger)
            } else {
                ike = nil
            }
            gateway = Gateway(registry: registry, negotiator: ike ?? peer, services: services, logger: logger)
            kdUDP = try GatewayUDPListener(gateway: gateway, logger: logger, onSMS: { d in box.world?.deliver(d) })
        }
        app = try AppClient(path: dir.appendingPathComponent("app-client.sock").path)
        appSocket = dir.appendingPathComponent("app.sock").path
        let identity = SubscriberIdentity()
        let smppPassword = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        let events: @Sendable (NetworkEvent) -> Void = { e in box.world?.onNetworkEvent(e) }
        var traceSink: (@Sendable (ATTraceLine) -> Void)?
        if trace { traceSink = { line in FileHandle.standardError.write(Data((line.description + "\n").utf8)) } }
        sim = ModemSimulator(profile: profile, linkPath: dir.appendingPathComponent("modem").path, faults: faults,
                             smsPort: nil,
                             smpp: useDaemon ? SMPPOptions(port: 0, password: smppPassword, gatewayNumber: Self.gatewayNumber) : nil,
                             packetGateway: packetGateway, identity: identity, timing: timing, logger: logger,
                             events: events, trace: traceSink)
        box.world = self
        kdUDP?.onMessage = { up, bytes in box.world?.onKeyDelegation?(up, bytes) }
        let capture = self.capture
        peer.onPacket = { toPeer, bytes, handset in capture.packet(toPeer: toPeer, esp: bytes, handset: handset) }
        peer.onSA = { spi, fromHandset, key, salt in capture.sa(spi: spi, fromHandset: fromHandset, key: key, salt: salt) }
        if let lab {
            if let packetGateway { tapPacketGateway(packetGateway, ike: ike, keylog: keylog != nil) }
            try provisionForIKE(lab: lab, kek: kekPath, msisdn: identity.ownNumber)
            if let ike { try routeIKE(ike) }
        } else {
            _ = try Provisioning.create(registry: registryPath, kek: kekPath, stateDir: dir.appendingPathComponent("state").path,
                                        msisdn: identity.ownNumber, deviceID: deviceID, innerAddress: handsetAddress)
        }
        try sim.start()
        if let gatewayDaemon, useDaemon {
            let negotiator = lab.flatMap { lab in packetGateway.map { Self.daemonNegotiator(lab: lab, relay: $0) } }
            try startDaemon(gatewayDaemon, smppPassword: smppPassword, negotiator: negotiator ?? "negotiator = socket")
        } else {
            gw = InProcessGatewayAccess(world: self)
        }
    }

    /// The back-end socket (the peer's negotiation, the secret service), the https test certificate, then
    /// `handset-gateway` bound over SMPP to the simulator's SMS centre.
    private func startDaemon(_ executable: String, smppPassword: String, negotiator: String) throws {
        guard let smppPort = sim.smppPort else { throw WorldError("the SMS centre has no SMPP port") }
        let socket = dir.appendingPathComponent("backend.sock").path
        do {
            backend = try BackendSocketServer(path: socket, handle: EmulatorBackend.handler(peer: peer, services: services))
        } catch { throw WorldError("back-end socket \(socket): \(error)") }
        fetchCertificate = try HTTPSTestServer.makeCertificate(in: dir)
        let d = try GatewayProcess(GatewayProcess.Settings(
            executable: executable, dir: dir, smppPort: smppPort, smppPassword: smppPassword,
            gatewayNumber: Self.gatewayNumber, backendSocket: socket, fetchCAFile: fetchCertificate!.cert,
            negotiator: negotiator))
        daemon = d
        gw = DaemonGatewayAccess(daemon: d)
    }

    /// Stops the daemon with SIGTERM (it drains and unbinds); nil when it exited 0, else what went wrong.
    func stopDaemon() -> String? { daemon?.stop() }

    /// Simulator events arrive on its queue; the gateway runs on ours, so delivering an answer never re-enters it.
    func onNetworkEvent(_ e: NetworkEvent) {
        onEvent?(e)
        if trace { FileHandle.standardError.write(Data((e.jsonLine + "\n").utf8)) }
        switch e.name {
        case "registration": lock.withLock { stats.registered = (e.int("stat") == 1 || e.int("stat") == 5) }
        case "sms-mo" where daemon != nil:
            guard e.int("port-dst") == Int(KD.smsPort) else { return }
            lock.withLock {
                stats.smsUpParts += 1
                if (e.int("concat-seq") ?? 1) == 1 { stats.smsUp += 1 }
            }
        case "smpp-submit":
            lock.withLock {
                stats.smsDownParts += 1
                if (e.int("concat-seq") ?? 1) == 1 { stats.smsDown += 1 }
            }
        case "sms-mo":
            guard e.int("port-dst") == Int(KD.smsPort), let hex = e.string("data") else { return }
            let bytes = (try? hexArgument(hex, name: "sms data")) ?? []
            queue.async { [self] in
                lock.withLock { stats.smsUpParts += 1 }
                if let total = e.int("concat-total"), total > 1, let ref = e.int("concat-ref"), let seq = e.int("concat-seq") {
                    let whole: [UInt8]? = lock.withLock {
                        uplinkParts[ref, default: [:]][seq] = bytes
                        guard let parts = uplinkParts[ref], parts.count == total else { return nil }
                        uplinkParts[ref] = nil
                        return (1...total).flatMap { parts[$0] ?? [] }
                    }
                    if let whole { uplink(whole) }
                } else {
                    uplink(bytes)
                }
            }
        default: break
        }
    }

    func uplink(_ message: [UInt8]) {
        lock.withLock { stats.smsUp += 1 }
        onKeyDelegation?(true, message)
        deliver(gateway.handleUplink(message))
    }

    /// Sends the gateway's answers as port-addressed binary SMS through the SMS centre.
    func deliver(_ downlinks: [Downlink]) {
        for d in downlinks {
            onKeyDelegation?(false, d.bytes)
            let parts = sim.deliverSMS(from: Self.gatewayNumber, data: d.bytes, portDst: Int(KD.smsPort), portSrc: Int(KD.smsPort))
            lock.withLock { stats.smsDown += 1; stats.smsDownParts += parts }
        }
    }

    var snapshot: WorldStats { lock.withLock { stats } }

    func writeConfig() throws -> URL {
        let url = dir.appendingPathComponent("handset.conf")
        let rules = lab != nil ? Self.strongSwanRules : """
            rule = protect 127.0.0.1/32 udp * 7-8 template=1
            rule = protect 127.0.0.1/32 udp 9000-9100 * template=2
            rule = secret 127.0.0.1/32 udp * 9999
            """
        let text = """
            # written by handset-emu run
            state_dir = \(dir.appendingPathComponent("state").path)
            serial = \(dir.appendingPathComponent("modem").path)
            baud = 115200
            dialect = \(firmwareDialect)
            gateway_number = \(Self.gatewayNumber)
            apn = internet
            app_socket = \(appSocket)
            local_address = \(handsetAddress.dottedQuad)
            esp_local_port = 0
            kd_transport = udp-fallback
            gateway_udp = 127.0.0.1:\(gatewayUDPPort)
            kd_sms_retry = 10
            \(rules)
            default = discard
            \(tunName.map { "tun = \($0)" } ?? "")

            """
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Starts the firmware as its own process, talking to the simulator's pty as it would to /dev/ttyUSB0.
    func startFirmware(path: String, qemu: String?) throws {
        let config = try writeConfig()
        let p = Process()
        if let qemu {
            p.executableURL = URL(fileURLWithPath: try Self.which(qemu))
            let sysroot = qemu.contains("aarch64") ? "/usr/aarch64-linux-gnu" : "/usr/arm-linux-gnueabihf"
            p.arguments = ["-L", sysroot, path, "run", config.path]
        } else {
            p.executableURL = URL(fileURLWithPath: path)
            p.arguments = ["run", config.path]
        }
        // The firmware dies with this process, however it ends: an orphan would reopen its tty path, whose pty
        // number a later simulator gets, and talk into that one (seen: other tests' modems answering garbage).
        let setpriv = "/usr/bin/setpriv"
        if FileManager.default.isExecutableFile(atPath: setpriv), let exe = p.executableURL {
            p.arguments = ["--pdeathsig", "KILL", "--", exe.path] + (p.arguments ?? [])
            p.executableURL = URL(fileURLWithPath: setpriv)
        }
        _ = FileManager.default.createFile(atPath: firmwareLog.path, contents: nil)
        let out = try FileHandle(forWritingTo: firmwareLog)
        p.standardOutput = out
        p.standardError = out
        try p.run()
        firmware = p
        app.firmwarePath = appSocket
    }

    /// Largest resident set the firmware process reached (VmHWM, KiB); under qemu it includes qemu itself.
    private(set) var firmwarePeakRSSKiB = 0

    /// SIGKILL (a power cut), or with `graceful` SIGTERM first: the firmware then ends its loop and prints its
    /// heap figures (counting builds); SIGKILL follows after 10 s if it has not exited.
    func stopFirmware(graceful: Bool = false) {
        guard let p = firmware, p.isRunning else { return }
        if let status = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(separator: " ").dropFirst().first ?? "") {
            firmwarePeakRSSKiB = max(firmwarePeakRSSKiB, kib)
        }
        if graceful {
            kill(p.processIdentifier, SIGTERM)
            let end = Date().addingTimeInterval(10)
            while p.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Kills the firmware without warning and starts it again: a power cut.
    func powerCycleFirmware(path: String, qemu: String?) throws {
        stopFirmware()
        try startFirmware(path: path, qemu: qemu)
    }

    var firmwareOutput: String { (try? String(contentsOf: firmwareLog, encoding: .utf8)) ?? "" }

    func shutdown() {
        stopFirmware()
        _ = daemon?.stop()
        backend?.stop()
        sim.stop()
        ike?.stop()
        peer.stop()
        kdUDP?.stop()
        capture.close()
        try? FileManager.default.removeItem(at: dir)
    }

    static func which(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(d)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw WorldError("\(name) not found on PATH (install qemu-user)")
    }
}

/// Lets the simulator's event callback reach the world without keeping it alive.
final class WorldBox: @unchecked Sendable {
    weak var world: EmulatedWorld?
}

struct WorldError: Error, CustomStringConvertible {
    var description: String
    init(_ s: String) { description = s }
}

/// Back-end services reached only over the trusted bearer: a secret-data responder and an https fetcher.
final class EmuServices: TrustedServices, @unchecked Sendable {
    var caFile: String?
    private let lock = NSLock()
    private var seen: [[UInt8]] = []
    /// Every secret the service got (from the in-process gateway, or from the daemon over the back-end socket).
    var secretsSeen: [[UInt8]] { lock.withLock { seen } }
    /// Overrides the secret responder's answer (torture echoes long secrets to get concatenated downlinks).
    var secretReply: (@Sendable ([UInt8]) -> [UInt8])?

    func secret(device: UInt64, channel: UInt16, data: [UInt8]) -> [UInt8]? {
        lock.withLock { seen.append(data) }
        if let secretReply { return secretReply(data) }
        return Array("received \(data.count) secret bytes on channel \(channel)".utf8)
    }

    /// https GET through curl with the test CA (the fetch runs on the gateway, never on the handset). Anything
    /// but https is refused before curl runs (file:// would read the gateway's own files), and curl itself is
    /// held to https, redirects included.
    func fetch(device: UInt64, url: String) -> (status: UInt16, body: [UInt8]) {
        guard let u = URLComponents(string: url), u.scheme?.lowercased() == "https", let host = u.host, !host.isEmpty else {
            return (400, Array("only https:// URLs may be fetched".utf8))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var args = ["-sS", "--max-time", "10", "--proto", "=https", "--proto-redir", "=https", "-w", "\n%{http_code}"]
        if let caFile { args += ["--cacert", caFile] }
        p.arguments = args + ["--url", url]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = Pipe()
        guard (try? p.run()) != nil else { return (502, Array("curl missing".utf8)) }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let code = UInt16(lines.popLast() ?? "") ?? 0
        return (p.terminationStatus == 0 ? code : 502, Array(lines.joined(separator: "\n").utf8))
    }
}
