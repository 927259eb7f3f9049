import ArgumentParser
import Foundation
import Logging
import ModemSim

/// `handset-emu run`: the whole system without hardware. The firmware runs as its own process against the
/// simulator's pty, exactly as on a board.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the handset firmware against a simulated modem, network, gateway and peer.",
        discussion: """
            Starts the modem simulator (a real pty), the SMS centre (with its SMPP 3.4 port), the opposite party \
            (ESP-in-UDP on 127.0.0.1), the gateway daemon `handset-gateway` as its own process (a config file in \
            the run's directory, SQLite registry, SMPP to the SMS centre, the opposite party and secret service \
            over a back-end socket this tool serves, stopped with SIGTERM at the end and its exit status checked) \
            and the firmware as a separate process, then drives the scenarios and prints a summary. Exits 0 only \
            if every scenario succeeded (77 if none failed but one was skipped).

            --tun (root only) adds the tun scenario: an ordinary program's UDP through the firmware's TUN interface.

            --server strongswan (root) runs the handset against a stock strongSwan server instead of the emulated \
            peer: scripts/ike-lab starts the server in its own network namespace (UDP echo on 10.200.0.1:7 behind \
            it) and the gateway's proxy charon, which the daemon drives (negotiator = strongswan; with --keylog the \
            gateway runs in this tool, whose keylog taps its key records); the packet gateway owns the handset's \
            public address (docs/ike-proxy.md). Scenarios then: login, \(Scenario.strongSwan.map(\.name).joined(separator: ", ")). \
            Without root or strongSwan the run says why and exits 77; it never falls back to the emulated peer.

            --server-config DIR: the lab server loads a user's own swanctl.conf and credentials from DIR instead \
            of the lab's conn (swanctl --load-all), and DIR/proxy.conf says how the proxy authenticates the \
            server and the handset (server_id, server_ca, handset_id, handset_ca_cert + handset_ca_key or \
            handset_psk_file, virtual_ip, handset_address; docs/ike-proxy.md). The server's children must cover \
            the echo 10.200.0.1 and the handset's inner address (10.201.0.2 unless handset_address says; with \
            a pool, the handset adopts the lease). Scenarios then: login, ike-handset-initiated.

            --packet-gateway, --ike-proxy and --opposite-party put the operator's packet gateway in front of the \
            handset's public endpoint (see `handset-emu modem --help`); the emulated peer is reached on 127.0.0.1 \
            either way.

            Scenarios: \(Scenario.all.map(\.name).joined(separator: ", ")) (default: all, in that order).

            Examples:
              handset-emu run --scenario handset-initiated --scenario sa-cache
              handset-emu run --scenario rekey --duration 5 --rate 5
              handset-emu run --scenario login --profile quectel --faults garbage@0.05
            """)

    @Option(help: "Scenario to run (repeatable). Default: all.") var scenario: [String] = []
    @Option(help: "Modem profile: simcom, quectel, ublox, sim800, sim800-single (sim800 in single-connection mode).")
    var profile = "simcom"
    @Option(help: "Firmware binary to run (default: handset-fw next to this tool).") var firmware: String?
    @Option(help: "Run the firmware under qemu-user: qemu-aarch64 or qemu-arm.") var qemu: String?
    @Option(help: "The gateway daemon to run (default: handset-gateway next to this tool).") var gateway: String?
    @Option(help: "Write Internet-side traffic (ESP-in-UDP) as pcap.") var pcap: String?
    @Option(help: "Write Wireshark's esp_sa table (one CSV row per SA) so tshark can decrypt the pcap.") var keylog: String?
    @Flag(help: "Show the AT dialogue (AT> to the module, AT< from it), the network events and the firmware's log, on stderr.")
    var trace = false
    @Flag(help: "Give the firmware a TUN interface and run the tun scenario after the others (needs root).") var tun = false
    @Option(help: "Faults for the simulator (see `handset-emu modem --help`).") var faults: String?
    @Option(help: "Seconds of traffic in the rekey scenario.") var duration: Double = 12
    @Option(help: "Datagrams per second in the rekey scenario.") var rate: Double = 2
    @Option(help: "Opposite party: emulated (our ESP peer on 127.0.0.1) or strongswan (a stock server, root).")
    var server = "emulated"
    @Option(name: .customLong("ike-lab"), help: "The lab script for --server strongswan (default: scripts/ike-lab).")
    var ikeLab: String?
    @Option(name: .customLong("server-config"), help: "With --server strongswan: the server's swanctl.conf, credentials and proxy.conf from DIR.")
    var serverConfig: String?
    @OptionGroup(title: "Packet gateway") var packetGateway: PacketGatewayOptions

    func validate() throws {
        for s in scenario where Self.scenario(named: s) == nil {
            throw ValidationError("unknown scenario '\(s)'; choose from \((Scenario.all + [.tun] + Scenario.strongSwan).map(\.name).joined(separator: ", "))")
        }
        guard EmulatedWorld.profile(named: profile) != nil else {
            throw ValidationError("--profile must be simcom, quectel, ublox, sim800 or sim800-single (generic has no sockets)")
        }
        guard duration >= 3, rate > 0, rate <= 50 else { throw ValidationError("--duration >= 3 and 0 < --rate <= 50") }
        _ = try packetGateway.config()
        guard ["emulated", "strongswan"].contains(server) else { throw ValidationError("--server must be emulated or strongswan") }
        if serverConfig != nil && server != "strongswan" { throw ValidationError("--server-config needs --server strongswan") }
        if server == "strongswan" && packetGateway.publicEndpoint != nil {
            throw ValidationError("--server strongswan sets up its own packet gateway; leave out --packet-gateway")
        }
    }

    static func scenario(named n: String) -> Scenario? {
        n == Scenario.tun.name ? Scenario.tun : Scenario.named(n) ?? Scenario.strongSwan.first { $0.name == n }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let logger = Logger(label: "emu")
        let fwPath = firmware ?? firmwareBesideThisTool()
        guard FileManager.default.isExecutableFile(atPath: fwPath) else {
            throw ValidationError("firmware not found at \(fwPath) (build it with `swift build`, or pass --firmware)")
        }
        // With --server strongswan --keylog the gateway stays in this process: the keylog taps its IKE engine.
        let gatewayPath = gateway ?? besideThisTool("handset-gateway")
        let inProcess = server == "strongswan" && keylog != nil
        if !inProcess && !FileManager.default.isExecutableFile(atPath: gatewayPath) {
            throw ValidationError("gateway daemon not found at \(gatewayPath) (build it with `swift build --product handset-gateway`, or pass --gateway)")
        }
        let plan = try faults.map { try FaultPlan(spec: $0) } ?? FaultPlan()
        var lab: IKELabSession?
        if server == "strongswan" {
            let script = ikeLab ?? IKELabSession.defaultScript(tool: CommandLine.arguments[0])
            if let why = IKELabSession.unavailableReason(script: script) {
                print("SKIP  --server strongswan: \(why)")
                throw ExitCode(77)
            }
            // The proxy's DELETE of a rekey it initiated waits for the handset's sa-ack, up to 20 s (hold_rekey).
            setenv("IKE_LAB_HOLD_REKEY", "20", 0)
            // IKE_SA keys leave the proxy charon only for a keylog the user asked for (plugin ike_keys).
            if keylog != nil { setenv("IKE_LAB_IKE_KEYS", "yes", 1) }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handset-emu-ike-lab-\(getpid())")
            lab = try IKELabSession(script: script, dir: dir, serverConfig: try serverConfig.map { try IKEServerConfig(directory: $0) })
        }
        // Down however the run ends (after the world's own shutdown, which stops its use of the lab).
        defer { lab?.down(); lab.map { try? FileManager.default.removeItem(at: $0.dir) } }
        let world = try EmulatedWorld(profile: EmulatedWorld.profile(named: profile)!.0, faults: plan, trace: trace, pcap: pcap,
                                      keylog: keylog, logger: logger, packetGateway: try packetGateway.config(), lab: lab,
                                      gatewayDaemon: inProcess ? nil : gatewayPath)
        world.firmwareDialect = EmulatedWorld.profile(named: profile)!.dialect
        world.capture.peerPort = world.peer.espPort
        defer { world.shutdown() }
        if let l = world.lab, let r = world.sim.packetGatewayPublicSide {
            print("world: modem \(profile) on \(world.dir.path)/modem, strongSwan server \(l["SRV_ADDR"]) (\(l["NETNS"])), packet gateway \(r), handset \(world.handsetAddress.dottedQuad)\(l.serverConfig.map { " with the server config of \($0.dir.path)" } ?? ""), firmware \(fwPath)\(qemu.map { " under \($0)" } ?? "")")
        } else {
            print("world: modem \(profile) on \(world.dir.path)/modem, peer 127.0.0.1:\(world.peer.espPort), firmware \(fwPath)\(qemu.map { " under \($0)" } ?? "")")
        }
        if let d = world.daemon {
            let negotiator = world.lab == nil ? "" : ", negotiator strongswan (the proxy charon \(world.lab!["PROXY_VICI"]))"
            print("world: gateway daemon \(gatewayPath) (pid \(d.process.processIdentifier)), SMPP to the SMS centre on 127.0.0.1:\(world.sim.smppPort ?? 0), HTTP 127.0.0.1:\(d.httpPort), UDP 127.0.0.1:\(d.udpPort)\(negotiator)")
        } else if world.lab != nil {
            print("world: gateway in this process (--keylog taps its IKE engine's key records)")
        }
        let defaults = lab == nil ? Scenario.all
            : [Scenario.named("login")!] + Scenario.strongSwan.filter { serverConfig == nil || $0.name == "ike-handset-initiated" }
        var chosen = scenario.isEmpty ? defaults : scenario.compactMap(Self.scenario(named:))
        if tun && !chosen.contains(where: { $0.name == Scenario.tun.name }) { chosen.append(.tun) }
        if chosen.contains(where: { $0.name == Scenario.tun.name }) && TUNWorld.unavailableReason == nil {
            world.tunName = TUNWorld.interfaceName()
        }
        try world.startFirmware(path: fwPath, qemu: qemu)
        let status = StatusView(world: world)
        status.start()
        let ctx = ScenarioContext(world: world, rate: rate, duration: duration, firmware: fwPath, qemu: qemu)
        var results: [(Scenario, Result<String, Error>, Double)] = []
        for s in chosen {
            let t0 = Date()
            print("scenario \(s.name): \(s.summary) ...")
            let r = Result { try s.run(ctx) }
            results.append((s, r, Date().timeIntervalSince(t0)))
            if case .failure(let e) = r {
                print(e is ScenarioSkipped ? "  \(e)" : "  FAILED: \(e)")
                // Now, not at the end: a later scenario may restart the firmware, which starts a new log.
                if !(e is ScenarioSkipped) {
                    print("  --- firmware log at the failure (last 40 lines)")
                    for l in world.firmwareOutput.split(separator: "\n").suffix(40) { print("  \(l)") }
                }
            }
        }
        status.stop()
        world.stopFirmware(graceful: true)
        for line in world.firmwareOutput.split(separator: "\n") where line.hasPrefix("heap:") { print(line) }
        var checks = invariants(world)
        if let d = world.daemon {
            let problem = world.stopDaemon()
            checks.append(("gateway daemon drained on SIGTERM and exited 0", problem == nil,
                           problem ?? (d.log.contains("SMPP unbound") ? "unbound from the SMS centre, exit 0" : "exit 0")))
        }
        printSummary(results, checks: checks, world: world)
        if trace || results.contains(where: { Self.failed($0.1) }) || !checks.allSatisfy(\.1) {
            print("--- firmware log (last 40 lines)")
            print(world.firmwareOutput.split(separator: "\n").suffix(40).joined(separator: "\n"))
            if let d = world.daemon {
                print("--- gateway daemon log (last 30 lines)")
                print(GatewayProcess.tail(d.logURL, 30))
            }
            for (name, key) in [("proxy charon", "PROXY_LOG"), ("strongSwan server", "SRV_LOG")] {
                guard let path = lab?[key], let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                print("--- \(name) log (last 30 lines)")
                print(text.split(separator: "\n").suffix(30).joined(separator: "\n"))
            }
        }
        if results.contains(where: { Self.failed($0.1) }) || !checks.allSatisfy(\.1) { throw ExitCode(1) }
        if results.contains(where: { Self.skipped($0.1) }) { throw ExitCode(77) }
    }

    static func skipped(_ r: Result<String, Error>) -> Bool { if case .failure(let e) = r { e is ScenarioSkipped } else { false } }
    static func failed(_ r: Result<String, Error>) -> Bool { if case .failure(let e) = r { !(e is ScenarioSkipped) } else { false } }

    /// Pads a name to `width`; never cuts it (a cut name could not be passed to --scenario).
    static func pad(_ s: String, _ width: Int) -> String { s.padding(toLength: max(width, s.count), withPad: " ", startingAt: 0) }

    /// Wire invariants over everything captured on the Internet side.
    func invariants(_ w: EmulatedWorld) -> [(String, Bool, String)] {
        let c = w.capture.summary
        let peer = w.peer.counters
        // With the strongSwan server, the server authenticates ESP (each scenario checks its counters); the emulated
        // peer sees nothing, so what it counted would prove nothing.
        let authenticated = w.lab == nil ? ("every packet authenticated", peer.dropped == 0,
            "\(peer.packetsIn) in, \(peer.dropped) dropped\(peer.lastDrop.isEmpty ? "" : " (\(peer.lastDrop))")")
            : ("ESP crossed the packet gateway, none dropped for want of the handset's socket",
               (w.sim.packetGatewayCounters?.droppedNoHandsetSocket ?? 1) == 0,
               w.sim.packetGatewayCounters.map { "\($0.espToServer) to the server, \($0.espToHandset) to the handset" } ?? "no packet gateway")
        return [
            authenticated,
            ("no (key, nonce) pair repeated", c.nonceReuse == 0, "\(c.packets) packets, \(c.spis) SPIs"),
            ("sequence numbers increase", c.seqRegressions == 0, "\(c.seqRegressions) regressions"),
        ]
    }

    func printSummary(_ results: [(Scenario, Result<String, Error>, Double)], checks: [(String, Bool, String)], world: EmulatedWorld) {
        print("\nsummary")
        let width = results.map(\.0.name.count).max() ?? 0
        for (s, r, t) in results {
            switch r {
            case .success(let d): print("  PASS  \(Self.pad(s.name, width)) \(String(format: "%5.1f s", t))  \(d)")
            case .failure(let e): print("  \(e is ScenarioSkipped ? "SKIP" : "FAIL")  \(Self.pad(s.name, width)) \(String(format: "%5.1f s", t))  \(e)")
            }
        }
        for (name, ok, detail) in checks { print("  \(ok ? "PASS" : "FAIL")  \(name): \(detail)") }
        let s = world.snapshot
        print("  sms up/down: \(s.smsUp)/\(s.smsDown) messages (\(s.smsUpParts)/\(s.smsDownParts) parts); ESP packets: \(world.capture.summary.packets); firmware peak RSS: \(world.firmwarePeakRSSKiB) KiB")
        let passed = results.filter { if case .success = $0.1 { true } else { false } }.count + checks.filter(\.1).count
        let skipped = results.filter { Self.skipped($0.1) }.count
        let total = results.count + checks.count
        print("\(passed) passed, \(total - passed - skipped) failed\(skipped > 0 ? ", \(skipped) skipped" : "")")
    }
}

/// A status line every few seconds: registration, SMS, SAs, packets each way, drops.
final class StatusView: @unchecked Sendable {
    let world: EmulatedWorld
    private var running = true
    private let lock = NSLock()
    private let t0 = Date()

    init(world: EmulatedWorld) { self.world = world }

    func start() {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                Thread.sleep(forTimeInterval: 3)
                guard lock.withLock({ running }) else { return }
                let s = world.snapshot, p = world.peer.counters, g = world.gw.counters
                let head = String(format: "  [%4.0fs] reg=%@ sms up/down=%d/%d rotations=%d SAs delivered=%d",
                                  Date().timeIntervalSince(t0), s.registered ? "yes" : "no", s.smsUp, s.smsDown,
                                  g.rotations, g.saDelivered)
                if world.lab != nil, let r = world.sim.packetGatewayCounters {
                    // The opposite party is the strongSwan server: what crossed the packet gateway.
                    print(head + " pushed=\(g.saPushed) ESP to/from server=\(r.espToServer)/\(r.espToHandset) IKE to/from server=\(r.ikeToServer)/\(r.ikeToProxy)")
                } else {
                    print(head + String(format: " peer SAs=%d ESP out/in=%d/%d drops=%d", world.peer.installedSAs, p.packetsIn,
                                        p.packetsOut, p.dropped))
                }
            }
        }
    }

    func stop() { lock.withLock { running = false } }
}
