import ArgumentParser
import EmulatorSupport
import Foundation
import Gateway
import HandsetCore
#if canImport(Glibc)
import Glibc
#endif

/// `handset-emu load`: many in-process handsets against real `handset-gateway` processes.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive N in-process handsets through real gateway daemons (SMPP and UDP) and measure them.",
        discussion: """
            Provisions --devices handsets into the registry (a fresh SQLite file in --work-dir unless --registry \
            names a store), acts as the SMS centre the gateways bind to, starts --instances handset-gateway \
            processes on that registry (negotiator = emulated; each dies with this tool), and drives the handsets \
            as the real KeyDelegationClient with its state in memory: logins with key rotation, key requests \
            (with their SA transfers and SA acks, a share of them by UDP), secret data and fetch requests. \
            --rate is the uplink messages per second offered (follow-ups such as key-confirm and sa-ack count); \
            each device has one exchange in flight at a time, so a slow gateway gets fewer.

            Prints the achieved rate, the gateway's latency (an SMS uplink to its deliver_sm_resp, which the daemon \
            sends once the message is handled and its answers queued; a UDP key request to its answer), each \
            exchange's round trip, and errors. Checks from outside that no (key, nonce) pair repeats across the \
            run (the same counter under the same key with other bytes), and that every acknowledged uplink's \
            counter is in the registry afterwards. Exits 1 if either fails. SMS parts the SMS centre still holds \
            at the end are listed by state (delivered and unanswered, answered 0x65 and due again, waiting for a \
            link): held, they are not lost. A UDP key request with no answer goes out again, the same bytes, each \
            second (4 sends in all). The daemons' emulated peer holds 2048 SAs for all devices together (a login \
            frees the device's): past about 800 devices key requests start to be refused by the peer, not the gateway.

            --kill-one-at T sends SIGKILL to the first instance T seconds in, at a moment it holds unacknowledged \
            SMS (waiting up to 2 s for one); the SMS centre delivers those again to the others. --drop-links-at T \
            cuts every SMPP link once; --fault-at T --fault-command CMD runs CMD then (e.g. a database restart: \
            scripts/store-rate --restart DIR).

            Examples:
              handset-emu load --devices 50 --rate 100 --duration 5
              handset-emu load --devices 20 --rate 40 --duration 3 --instances 2 --kill-one-at 1

            On PostgreSQL (a throwaway server: scripts/store-rate --server DIR prints its spec), add \
            --registry SPEC --kek FILE; BENCHMARKS.md has the runs.
            """)

    @Option(help: "Handsets to provision and drive.") var devices = 100
    @Option(help: "Uplink messages per second offered.") var rate: Double = 100
    @Option(help: "Seconds of load.") var duration: Double = 10
    @Option(help: "Registry store: sqlite:PATH or postgres://USER@HOST:PORT/DB?password_file=PATH (default: a new SQLite file).")
    var registry: String?
    @Option(help: "The registry's key-encryption key file (created if missing; default: WORK_DIR/registry.kek).") var kek: String?
    @Option(help: "Gateway daemons to start on the registry.") var instances = 1
    @Option(name: .customLong("udp-share"), help: "Share of key requests (and their SA acks) sent by UDP, 0-1.")
    var udpShare: Double = 0.3
    @Option(name: .customLong("device-workers"), help: "The daemons' device_workers.") var deviceWorkers = 64
    @Option(help: "handset-gateway binary (default: beside this tool).") var gateway: String?
    @Option(name: .customLong("work-dir"), help: "Directory for configs and logs (default: a new one in /tmp).") var workDir: String?
    @Option(name: .customLong("kill-one-at"), help: "Seconds into the load at which the first instance is killed with SIGKILL.")
    var killOneAt: Double?
    @Option(name: .customLong("drop-links-at"), help: "Seconds into the load at which the SMS centre cuts every SMPP link.")
    var dropLinksAt: Double?
    @Option(name: .customLong("fault-at"), help: "Seconds into the load at which --fault-command runs.") var faultAt: Double?
    @Option(name: .customLong("fault-command"), help: "A shell command run at --fault-at (e.g. restart the database).")
    var faultCommand: String?
    @Option(help: "Seconds an exchange may take before it counts as timed out.") var timeout: Double = 10

    func validate() throws {
        guard (1...100_000).contains(devices) else { throw ValidationError("--devices must be 1-100000") }
        guard rate > 0, duration > 0 else { throw ValidationError("--rate and --duration must be positive") }
        guard (1...8).contains(instances) else { throw ValidationError("--instances must be 1-8") }
        guard (0...1).contains(udpShare) else { throw ValidationError("--udp-share must be 0-1") }
        guard udpShare == 0 || devices <= 20_000 else { throw ValidationError("past 20000 devices use --udp-share 0 (a UDP socket each)") }
        if devices > 800 {
            FileHandle.standardError.write(Data("note: past ~800 devices the emulated peer's \(EmulatedPeer.saCapacity) SAs may fill; its refusals come back as error answers\n".utf8))
        }
        if instances > 1, registry.map({ !$0.hasPrefix("postgres") }) ?? true {
            FileHandle.standardError.write(Data("note: several instances on one SQLite file share its write lock\n".utf8))
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = try workDir ?? makeTempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let spec = registry.map { Provisioning.isSpec($0) ? $0 : "sqlite:" + $0 } ?? "sqlite:\(dir)/registry.sqlite"
        let kekPath = kek ?? dir + "/registry.kek"
        let gatewayNumber = "+15550199"

        // Provision: a row per device in the store, the same key in each in-process handset.
        let t0 = loadClock()
        let keyFile = try KeyEncryptionKey.loadOrCreate(path: kekPath)
        let store = try RegistryStoreSpec.open(spec, kek: keyFile)
        let base = UInt64.random(in: 1...(UInt64.max / 2))
        let numberBase = Int.random(in: 1_000_000_000...8_000_000_000)
        var fleet: [LoadDevice] = []
        for i in 0..<devices {
            var key = KeyMaterial.random(32)
            defer { for j in key.indices { key[j] = 0 } }
            let id = base + UInt64(i)
            let added = try store.add(DeviceRecord(id: id, msisdn: "+1\(numberBase + i)", key: Data(key)),
                                      pool: AddressPool(cidr: "10.64.0.0/10")!)
            let handsetKey = key.withUnsafeBytes { KeyBytes($0) }
            fleet.append(try LoadDevice(index: i, id: id, msisdn: added.msisdn, inner: added.innerAddress!, key: handsetKey))
        }
        store.disconnect()
        let provisioned = loadClock() - t0
        print("provisioned \(devices) devices in \(String(format: "%.1f", provisioned)) s (\(spec.hasPrefix("postgres") ? "postgres" : "sqlite"))")

        // The SMS centre, then the daemons.
        let smsc = try LoadSMSC(gatewayNumber: gatewayNumber)
        let pw = dir + "/smpp.pw"
        _ = FileManager.default.createFile(atPath: pw, contents: Data("loadpw\n".utf8), attributes: [.posixPermissions: 0o600])
        chmod(pw, 0o600)
        var udpPorts: [Int] = []
        var daemons: [Process] = []
        defer { for p in daemons where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let binary = gateway ?? URL(fileURLWithPath: firmwareBesideThisTool()).deletingLastPathComponent()
            .appendingPathComponent("handset-gateway").path
        for k in 0..<instances {
            let udp = try Self.freeUDPPort()
            udpPorts.append(udp)
            let conf = dir + "/gateway-\(k).conf"
            let text = """
                registry = \(spec)
                kek = \(kekPath)
                smpp_port = \(smsc.port)
                smpp_system_id = load-gw\(k)
                smpp_password_file = \(pw)
                gateway_number = \(gatewayNumber)
                udp_listen = 127.0.0.1:\(udp)
                http_listen = 127.0.0.1:0
                device_workers = \(deviceWorkers)
                log_level = warning
                negotiator = emulated
                """
            try (text + "\n").write(toFile: conf, atomically: true, encoding: .utf8)
            daemons.append(try Self.spawn(binary, config: conf, log: dir + "/gateway-\(k).log"))
        }
        let bindDeadline = loadClock() + 30
        while smsc.boundLinks < instances {
            guard loadClock() < bindDeadline, daemons.allSatisfy(\.isRunning) else {
                throw LoadError("the gateway(s) did not bind within 30 s; logs in \(dir)/gateway-*.log")
            }
            usleep(50_000)
        }
        let engine = try LoadFleet(devices: fleet, smsc: smsc, udpPorts: udpPorts, udpShare: udpShare, timeout: timeout)

        // Load: a credit of `rate` uplinks a second; every uplink sent (follow-ups too) spends one.
        print("load: \(devices) devices, \(instances) instance(s), \(rate) msg/s offered for \(duration) s")
        let start = loadClock()
        var credit = 1.0, last = start, seenSent = 0, killed = false, dropped = false, faulted = false
        while loadClock() - start < duration {
            let t = loadClock()
            credit = min(credit + rate * (t - last), max(1, rate * 0.05))
            last = t
            let sent = engine.stats.with { $0.uplinksSent }
            credit -= Double(sent - seenSent)
            seenSent = sent
            var misses = 0
            while credit >= 1 && misses < 16 {
                let n = engine.start(fleet[Int.random(in: 0..<fleet.count)])
                if n == 0 { misses += 1; continue }
                credit -= Double(n)
                seenSent += n
            }
            if misses >= 16 { engine.stats.with { $0.noIdleDevice += 1 } }
            // Killed while it holds unacknowledged messages (waiting up to 2 s for a moment when it does).
            let holding = killOneAt != nil && !killed ? smsc.unacknowledged(by: "load-gw0") : 0
            if let at = killOneAt, !killed, t - start >= at, holding > 0 || t - start >= at + 2 {
                kill(daemons[0].processIdentifier, SIGKILL)
                print("instance 0 held \(holding) unacknowledged SMS parts")
                engine.instanceDied(0)
                killed = true
                print(String(format: "killed instance 0 (pid %d) with SIGKILL at %.1f s", daemons[0].processIdentifier, t - start))
            }
            if let at = dropLinksAt, !dropped, t - start >= at {
                smsc.dropLinks()
                dropped = true
                print(String(format: "cut every SMPP link at %.1f s", t - start))
            }
            if let at = faultAt, let cmd = faultCommand, !faulted, t - start >= at {
                faulted = true
                Thread.detachNewThread {
                    // posix_spawn + waitpid: Foundation's Process also waits for whatever inherited its exit-detection
                    // socket, and a database server the command restarts outlives the whole run.
                    let began = loadClock()
                    let outcome: String
                    do { try IKELabSession.run("/bin/sh", ["-c", cmd]); outcome = "exit 0" } catch { outcome = "failed: \(error)" }
                    print(String(format: "fault command ran from %.1f s for %.1f s, ", began - start, loadClock() - began) + outcome)
                }
            }
            usleep(1000)
        }
        let loadEnd = loadClock()
        // Let the exchanges in flight finish (bounded), then stop the daemons with SIGTERM (they drain).
        let drainDeadline = loadEnd + min(timeout, 10)
        while loadClock() < drainDeadline, fleet.contains(where: { d in d.lock.withLock { d.action != nil } }) || smsc.unacknowledged > 0 {
            usleep(20_000)
        }
        let unfinished = fleet.filter { d in d.lock.withLock { d.action != nil } }.count
        let unackedAtEnd = smsc.unacknowledgedParts()
        engine.stop()
        for p in daemons where p.isRunning { kill(p.processIdentifier, SIGTERM) }
        for p in daemons {
            let deadline = loadClock() + 20
            while p.isRunning && loadClock() < deadline { usleep(50_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        }
        smsc.stop()

        // Outside checks: the ledger, and every acknowledged uplink counter in the registry.
        let check = try RegistryStoreSpec.open(spec, kek: keyFile)
        defer { check.disconnect() }
        var lost = 0
        var registered: [Int: UInt64] = [:]
        for d in fleet {
            let acked = d.lock.withLock { d.maxAcked }
            let row = try check.device(id: d.id)
            registered[d.index] = row.map { UInt64($0.upCounter) } ?? 0
            if let row, UInt64(row.upCounter) >= acked { continue }
            lost += 1
        }
        describe(unacknowledged: unackedAtEnd, registered: registered)
        let ok = report(engine, seconds: loadEnd - start, unfinished: unfinished, unacked: unackedAtEnd.count, lost: lost,
                        daemons: daemons, killed: killed)
        var me = rusage(), children = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &me)
        getrusage(Int32(RUSAGE_CHILDREN.rawValue), &children)
        func cpu(_ r: rusage) -> Double {
            Double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + Double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6
        }
        print(String(format: "cpu: this tool %.1f s, the gateway processes %.1f s, over %.1f s of load and drain (%d cores)",
                     cpu(me), cpu(children), loadClock() - start, ProcessInfo.processInfo.activeProcessorCount))
        print("work dir: \(dir)")
        if !ok { throw ExitCode(1) }
    }

    func report(_ e: LoadFleet, seconds: Double, unfinished: Int, unacked: Int, lost: Int, daemons: [Process], killed: Bool) -> Bool {
        let s = e.stats
        let c = e.smsc.snapshot
        let ledger = e.ledger.summary
        func ms(_ v: Double) -> String { v.isNaN ? "-" : String(format: "%.1f ms", v * 1000) }
        s.with { s in
            let handled = s.smsAcked + s.udpAnswered
            print(String(format: "uplinks: %ld sent (%ld SMS, %ld UDP) in %.1f s = %.0f msg/s offered-and-sent", s.uplinksSent,
                         s.uplinksSMS, s.uplinksUDP, seconds, Double(s.uplinksSent) / seconds))
            print(String(format: "handled: %ld (SMS acknowledged %ld, UDP requests answered %ld) = %.0f msg/s; downlinks accepted %ld (%ld by UDP) = %.0f/s",
                         handled, s.smsAcked, s.udpAnswered, Double(handled) / seconds, s.downlinks, s.downlinksUDP,
                         Double(s.downlinks) / seconds))
            print("gateway latency (SMS uplink to deliver_sm_resp, UDP request to answer): p50 \(ms(percentile(s.gatewayLatency, 0.5))) "
                  + "p99 \(ms(percentile(s.gatewayLatency, 0.99))) max \(ms(s.gatewayLatency.max() ?? .nan)) (\(s.gatewayLatency.count) samples)")
            for a in LoadAction.allCases {
                let rt = s.roundTrip[a] ?? []
                print("  \(a.rawValue): \(s.started[a] ?? 0) started, \(rt.count) done, round trip p50 \(ms(percentile(rt, 0.5))) "
                      + "p99 \(ms(percentile(rt, 0.99))), timed out \(s.timeouts[a] ?? 0)")
            }
            print("received: " + s.received.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("errors: error answers \(s.errorAnswers), handset rejections "
                  + (s.rejected.isEmpty ? "0" : s.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                  + ", SMS refused by the gateway \(s.smsRefused), unfinished at end \(unfinished), SMS parts unacknowledged at end \(unacked)"
                  + ", saturated ticks \(s.noIdleDevice), UDP key requests sent again \(s.udpRetransmits) (given up \(s.udpGivenUp))")
        }
        print("smsc: binds \(c.binds), links lost \(c.linksLost), parts sent \(c.partsSent) acked \(c.partsAcked) "
              + "redelivered \(c.partsRedelivered) retried (0x65) \(c.partsRetried) refused \(c.partsRefused), submit_sm \(c.submits)")
        print("gateway exits: " + daemons.enumerated().map { k, p in
            killed && k == 0 ? "SIGKILL (ours)" : p.terminationReason == .exit ? "exit \(p.terminationStatus)" : "signal \(p.terminationStatus)"
        }.joined(separator: ", "))
        print("nonce check: \(ledger.sealed) sealed messages seen, \(ledger.again) seen again with the same bytes, "
              + "\(ledger.repeats) (key, nonce) repeats" + (ledger.examples.isEmpty ? "" : ": " + ledger.examples.joined(separator: "; ")))
        print("acknowledged uplinks: \(lost == 0 ? "every device's highest acknowledged counter is in the registry" : "\(lost) devices lost an acknowledged uplink")")
        return ledger.repeats == 0 && lost == 0
    }

    /// The parts the SMS centre still held at the end: not lost while it holds them (it delivers them again), but
    /// which of them the gateway never answered, and whether their counters reached the registry.
    func describe(unacknowledged parts: [LoadSMSC.Unacknowledged], registered: [Int: UInt64]) {
        guard !parts.isEmpty else { return }
        let byState = Dictionary(grouping: parts, by: \.state)
        let uplinks = Set(parts.map { "\($0.device)/\($0.counter)" }).count
        let taken = Set(parts.filter { (registered[$0.device] ?? 0) >= $0.counter }.map { "\($0.device)/\($0.counter)" }).count
        print("unacknowledged at end: " + [LoadSMSC.Unacknowledged.State.awaitingAnswer, .retrying, .noLink]
              .map { "\(byState[$0]?.count ?? 0) \($0.rawValue)" }.joined(separator: ", ")
              + "; of their \(uplinks) uplinks \(taken) in the registry (taken, answer not back), \(uplinks - taken) not (still held by the SMS centre)")
        for p in parts.sorted(by: { $0.age > $1.age }).prefix(5) {
            print("  device \(p.device) counter \(p.counter) part \(p.part): \(p.state.rawValue), \(p.retries) times 0x65, "
                  + String(format: "%.1f s since first sent", p.age) + ", registry at \(registered[p.device] ?? 0)")
        }
    }

    func makeTempDir() throws -> String {
        var template = Array("/tmp/handset-load-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw LoadError("mkdtemp failed") }
        return String(cString: p)
    }

    static func freeUDPPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw LoadError("no free UDP port") }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// The daemon under `setpriv --pdeathsig KILL`: it dies with this tool however that ends.
    static func spawn(_ binary: String, config: String, log: String) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw LoadError("\(binary): not found (build handset-gateway)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--pdeathsig", "KILL", "--", binary, "--config", config]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        try p.run()
        return p
    }
}
