import Foundation
import Gateway
import HandsetCore
import ProxyIKE
import Testing

/// The gateway's StrongSwanNegotiator against a REAL stock charon (scripts/ike-lab), IKE sent straight to the server
/// (no relay): SPIs and keys must be the ones the server uses, and failures must come back typed and bounded.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct StrongSwanNegotiatorTests {
    static let device: UInt64 = 0xA1
    static let inner = IPAddress(10, 201, 0, 5)
    static let service = IPAddress(10, 200, 0, 1)

    /// A lab, a registry holding one device with an IKE identity and PSK, and a negotiator pointed at the server.
    struct Setup {
        let lab: IKELab
        let registry: DeviceRegistry
        let negotiator: StrongSwanNegotiator
        let identity = "00000000000000a1@handset.invalid"
        let psk = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let deviceKey = KeyMaterial.random(32)
        var server: IPAddress { IPAddress(dottedQuad: lab["SRV_ADDR"])! }

        init(lab existing: IKELab? = nil, serverPSK: String? = nil,
             configure: (inout StrongSwanNegotiator.Configuration) -> Void = { _ in }) throws {
            lab = try existing ?? IKELab()
            do {
                registry = try DeviceRegistry(path: lab.dir.appendingPathComponent("reg.sqlite").path,
                                              kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("reg.kek").path))
                var d = DeviceRecord(id: StrongSwanNegotiatorTests.device, msisdn: "+15550000161", key: Data(deviceKey),
                                     innerAddress: StrongSwanNegotiatorTests.inner)
                d.ikeIdentity = identity
                d.ikePSK = Data(psk.utf8)
                try registry.add(d)
                try lab.serverLoadPSK(identity: identity, psk: serverPSK ?? psk)
                var c = StrongSwanNegotiator.Configuration(
                    viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
                    ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
                c.timeout = 3
                configure(&c)
                negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
                try negotiator.start(devices: [StrongSwanNegotiatorTests.device])
            } catch {
                lab.down()
                throw error
            }
        }

        func establish(remotePort: UInt16 = 7) -> (Result<KDSATransfer, NegotiationFailure>, Double) {
            let sel = TrafficSelector(local: StrongSwanNegotiatorTests.inner, remote: StrongSwanNegotiatorTests.service,
                                      localPort: 0, remotePort: remotePort)
            let t0 = Date()
            let r = negotiator.establish(device: StrongSwanNegotiatorTests.device, handset: StrongSwanNegotiatorTests.inner,
                                         selector: sel, template: 1, reused: false)
            return (r, Date().timeIntervalSince(t0))
        }

        func close() {
            negotiator.stop()
            lab.down()
        }
    }

    static func hex(_ spi: UInt32) -> String { String(format: "%08x", spi) }

    /// Seals one datagram with HandsetCore's data plane under the transfer's outbound SA and sends it to the
    /// server's ESP port, as the handset's module socket would.
    static func sendESP(_ t: KDSATransfer, to server: IPAddress, from inner: IPAddress = StrongSwanNegotiatorTests.inner) throws {
        var plane = DataPlane<4, 2>(defaultAction: .discard)
        let pattern = SelectorPattern(remote: service, prefix: 32, proto: IPProto.udp)
        try plane.spd.append(SPDRule(pattern, .protect(template: 1)))
        let p = SAParameters(spi: t.outboundSPI, direction: .outbound, algorithm: t.algorithm, keyLength: t.keyLength,
                             salt: t.outboundSalt, mode: .tunnel(local: inner, remote: server), local: inner,
                             selector: pattern, peer: server, peerPort: t.peerPort)
        let installed = t.outboundKey.withBytes { k -> Bool in
            do throws(SAError) { _ = try plane.sas.install(p, key: UnsafeRawBufferPointer(rebasing: k[0..<t.keyLength])); return true } catch { return false }
        }
        guard installed else { throw IKELab.LabError(description: "SA install failed") }
        var out = [UInt8](repeating: 0, count: 2048)
        let payload = Array("hello from the handset".utf8)
        let r = payload.withUnsafeBytes { b in
            out.withUnsafeMutableBytes { plane.seal(b, selector: TrafficSelector(local: inner, remote: service, localPort: 40000, remotePort: 7), into: $0) }
        }
        guard case .packet(let n, let peer, let port) = r, peer == server else { throw IKELab.LabError(description: "seal: \(r)") }
        try sendUDP(Array(out[0..<n]), to: server, port: port)
    }

    static func sendUDP(_ out: [UInt8], to server: IPAddress, port: UInt16) throws {
        let n = out.count
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(s) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = server.v4.bigEndian
        let sent = out.withUnsafeBytes { b in
            withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(s, b.baseAddress, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        guard sent == n else { throw IKELab.LabError(description: "sendto: errno \(errno)") }
    }

    static func eventually(_ seconds: Double, _ cond: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try cond() { return true }
            usleep(50_000)
        }
        return try cond()
    }

    @Test func establishGivesTheServersSPIsAndKeys() throws {
        let s = try Setup()
        defer { s.close() }
        let (r, seconds) = s.establish()
        print("establish (IKE_SA_INIT + IKE_AUTH + key record): \(String(format: "%.1f", seconds * 1000)) ms")
        guard case .success(let t) = r else { Issue.record("establish failed: \(r)"); return }
        #expect(t.peer == s.server && t.peerPort == 4500 && t.tunnel && t.algorithm == .aesGCM && t.remote == Self.service)
        #expect(t.proto == IPProto.udp && t.remotePort == 7 && t.softSeconds > 0 && t.hardSeconds >= t.softSeconds)
        // The server's view: it receives on the handset's outbound SPI and sends on its inbound one.
        let children = try s.lab.serverChildren()
        let child = try #require(children.first { $0.string("spi-in") == Self.hex(t.outboundSPI) })
        #expect(child.string("spi-out") == Self.hex(t.inboundSPI))
        #expect(child.string("encr-alg") == "AES_GCM_16" && child.string("encr-keysize") == String(t.keyLength * 8))
        // The lab server lists aes128gcm16 first and charon prefers its own order: AES-128-GCM end to end.
        #expect(t.keyLength == 16)
        #expect(child.string("packets-in") == "0")
        // Keys: only the server can tell, by opening what the handset sealed.
        try Self.sendESP(t, to: s.server)
        #expect(try Self.eventually(2) {
            try s.lab.serverChildren().first { $0.string("spi-in") == Self.hex(t.outboundSPI) }?.string("packets-in") == "1"
        })

        // A second flow is a CREATE_CHILD_SA on the same IKE_SA.
        let (r2, seconds2) = s.establish(remotePort: 9)
        print("establish (CREATE_CHILD_SA on the existing IKE_SA): \(String(format: "%.1f", seconds2 * 1000)) ms")
        guard case .success(let t2) = r2 else { Issue.record("second establish failed: \(r2)"); return }
        #expect(t2.outboundSPI != t.outboundSPI && t2.remotePort == 9)
        let sas = try s.lab.serverSAs()
        #expect(sas.count == 1 && (sas.first?.sa.section("child-sas")?.sections.count ?? 0) == 2)

        // A login forgets the device: its IKE_SA is deleted at the server too.
        s.negotiator.forget(device: Self.device)
        #expect(try Self.eventually(3) { try s.lab.serverSAs().isEmpty })
        #expect(s.negotiator.counters.established == 2 && s.negotiator.keySocketCounters?.malformed == 0)
    }

    /// End to end with the handset's own code: login, a key-request for the service behind the server, the
    /// gateway negotiating as the device, the handset installing the pair, and its first sealed datagram counted
    /// by the server's charon.
    @Test func aHandsetsKeyRequestGetsAPairTheServerAccepts() throws {
        let s = try Setup()
        defer { s.close() }
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let flash = Flash()
        var store = FlashStore(flash: flash)
        try store.save(KeyState(deviceID: Self.device, key: s.deviceKey.withUnsafeBytes { KeyBytes($0) }))
        var c = try KeyDelegationClient(store: FlashStore(flash: flash))
        c.localAddress = Self.inner
        var plane = HandsetPlane()
        try plane.spd.append(SPDRule(SelectorPattern(remote: IPAddress(10, 200, 0, 0), prefix: 16), .protect(template: 1)))
        c.boot(now: 0)
        exchange(&c, gateway, plane: &plane)
        #expect(c.phase == .ready)
        c.requestKey(template: 1, selector: TrafficSelector(local: Self.inner, remote: Self.service, localPort: 0, remotePort: 7), now: 1)
        let t0 = Date()
        exchange(&c, gateway, plane: &plane)
        print("key-request to SA installed (IKE included, SMS legs excluded): \(String(format: "%.1f", Date().timeIntervalSince(t0) * 1000)) ms")
        #expect(plane.sas.count == 2 && c.counters.sasInstalled == 2 && gateway.counters.saDelivered == 1)

        var out = [UInt8](repeating: 0, count: 2048)
        let payload = Array("from the handset's own data plane".utf8)
        let r = payload.withUnsafeBytes { b in
            out.withUnsafeMutableBytes { plane.seal(b, selector: TrafficSelector(local: Self.inner, remote: Self.service, localPort: 40000, remotePort: 7), into: $0) }
        }
        guard case .packet(let n, let peer, let port) = r else { Issue.record("seal: \(r)"); return }
        #expect(peer == s.server && port == 4500)
        try Self.sendUDP(Array(out[0..<n]), to: peer, port: port)
        #expect(try Self.eventually(2) { try s.lab.serverChildren().first?.string("packets-in") == "1" })
    }

    /// Through the gateway: the server's own CHILD_SA reaches the handset as a sealed sa-transfer (request 0),
    /// its delete as a sealed sa-delete of exactly that pair.
    @Test func theServerInitiatesAndTheTransferIsPushed() throws {
        let s = try Setup()
        defer { s.close() }
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let pushed = Pushed()
        s.negotiator.route(to: gateway) { pushed.send($0) }
        let started = try Self.serverInitiates(s)
        #expect(started.string("success") == "yes", "\(started.string("errmsg") ?? ""): \(s.lab.tail("SRV_LOG"))")
        #expect(Self.eventually(2) { pushed.downlinks.count == 1 })
        let t = try #require(try pushed.downlinks.first.flatMap { try Self.open($0, s.registry) }.flatMap {
            if case .transfer(let t) = $0 { t } else { nil }
        })
        #expect(t.requestID == 0 && t.peer == s.server && t.remotePort == 0 && gateway.counters.saPushed == 1)
        let server = try #require(try s.lab.serverChildren().first)
        #expect(server.string("spi-in") == Self.hex(t.outboundSPI) && server.string("spi-out") == Self.hex(t.inboundSPI))
        try Self.sendESP(t, to: s.server)
        #expect(try Self.eventually(2) { try s.lab.serverChildren().first?.string("packets-in") == "1" })
        // The server deletes it: the handset is told to drop exactly that pair.
        var end = VICIMessage()
        end.add("child", "push")
        end.add("timeout", "3000")
        _ = try s.lab.serverCall("terminate", end)
        #expect(Self.eventually(2) { pushed.downlinks.count == 2 })
        #expect(try pushed.downlinks.last.flatMap { try Self.open($0, s.registry) } == .delete(t.outboundSPI, t.inboundSPI))
    }

    /// The server initiates a CHILD_SA `push` (the service to the device's inner address) to the proxy. The lab's
    /// server conn initiates to the packet gateway's port 4500; with no relay here, this one goes to the proxy's NAT-T
    /// port instead. `custom` replaces the child's settings. Returns the server's answer to `initiate`.
    static func serverInitiates(_ s: Setup, to inner: IPAddress = inner, child custom: VICIMessage? = nil) throws -> VICIMessage {
        var child = VICIMessage()
        child.add("local_ts", list: ["\(Self.service.dottedQuad)/32"])
        child.add("remote_ts", list: ["\(inner.dottedQuad)/32"])
        child.add("esp_proposals", list: ["aes256gcm16"])
        if let custom { child = custom }
        var children = VICIMessage()
        children.add("push", section: child)
        var local = VICIMessage(); local.add("auth", "psk"); local.add("id", s.lab["SRV_ID"])
        var remote = VICIMessage(); remote.add("auth", "psk"); remote.add("id", s.identity)
        var conn = VICIMessage()
        conn.add("version", "2")
        conn.add("local_addrs", list: [s.lab["SRV_ADDR"]])
        conn.add("remote_addrs", list: [s.lab["PUB_ADDR"]])
        conn.add("local_port", "4500")
        conn.add("remote_port", s.lab["PROXY_NATT_PORT"])
        conn.add("proposals", list: ["aes256-sha256-x25519"])
        conn.add("local", section: local)
        conn.add("remote", section: remote)
        conn.add("children", section: children)
        var m = VICIMessage()
        m.add("push", section: conn)
        try s.lab.serverCallChecked("load-conn", m)
        var go = VICIMessage()
        go.add("child", "push")
        go.add("ike", "push")
        go.add("timeout", "3000")
        return try s.lab.serverCall("initiate", go)
    }

    /// Lifecycle from IKE: the server's CHILD_SA rekey reaches the handset as a new sa-transfer with the server's
    /// new SPIs, then an sa-delete of the old pair (make-before-break); an IKE_SA rekey sends the handset nothing.
    @Test func serverRekeysBecomeTransfersAndDeletes() throws {
        let s = try Setup()
        defer { s.close() }
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let pushed = Pushed()
        s.negotiator.route(to: gateway) { pushed.send($0) }
        guard case .success(let old) = s.establish().0 else { Issue.record("establish failed"); return }
        var rekey = VICIMessage()
        rekey.add("ike", "hs")
        #expect(try s.lab.serverCall("rekey", rekey).string("success") == "yes")
        usleep(500_000)
        #expect(pushed.downlinks.isEmpty, "an IKE_SA rekey is nothing to the handset")

        var child = VICIMessage()
        child.add("child", "hs")
        #expect(try s.lab.serverCall("rekey", child).string("success") == "yes")
        // The old pair goes when charon destroys it (delete_rekeyed_delay, 5 s by default): make-before-break.
        #expect(Self.eventually(3) { pushed.downlinks.count == 1 })
        #expect(Self.eventually(8) { pushed.downlinks.count == 2 })
        let opened = try pushed.downlinks.compactMap { try Self.open($0, s.registry) }
        guard opened.count == 2, case .transfer(let new) = opened[0] else { Issue.record("got \(opened)"); return }
        #expect(new.requestID == 0 && new.outboundSPI != old.outboundSPI && new.inboundSPI != old.inboundSPI)
        #expect(opened[1] == .delete(old.outboundSPI, old.inboundSPI))
        let server = try #require(try s.lab.serverChildren().first { $0.string("spi-in") == Self.hex(new.outboundSPI) })
        #expect(server.string("spi-out") == Self.hex(new.inboundSPI))
        try Self.sendESP(new, to: s.server)
        #expect(try Self.eventually(2) {
            try s.lab.serverChildren().first { $0.string("spi-in") == Self.hex(new.outboundSPI) }?.string("packets-in") == "1"
        })
    }

    /// The proxy's rekey_time below the server's (docs/ike-proxy.md): the proxy initiates the CHILD_SA rekey (its
    /// `rekeyed` record says initiator), before the server's own could start: proxy 10 s, server 30 s (charon
    /// starts it up to its rand_time, 3 s by default here, early), so a rekey before 27 s is the proxy's. The proxy
    /// rekeys at all only because our kernel interface reports the soft expiry a kernel would (handset_proxy_ipsec.c).
    @Test func theProxyRekeysBeforeTheServer() throws {
        let s = try Setup { $0.rekeyTime = 10 }
        defer { s.close() }
        let lab = try String(contentsOfFile: s.lab["SRV_SWANCTL"], encoding: .utf8)
        #expect(lab.contains("rekey_time = 1h"), "the lab's server says its rekey_time")
        let path = s.lab.dir.appendingPathComponent("srv-rekey-30s.conf").path
        try lab.replacingOccurrences(of: "rekey_time = 1h", with: "rekey_time = 30s").write(toFile: path, atomically: true, encoding: .utf8)
        try IKELab.output("/usr/bin/env", ["STRONGSWAN_CONF=\(s.lab["SRV_CONF"])", "/usr/sbin/swanctl", "--load-conns",
                                           "--file", path, "--uri", "unix://\(s.lab["SRV_VICI"])"])
        let records = KeyRecords()
        s.negotiator.keylogTap = { records.add($0) }
        let t0 = Date()
        guard case .success = s.establish().0 else { Issue.record("establish failed"); return }
        #expect(Self.eventually(20) { records.all.contains { $0.event == .rekeyed } }, "no rekey within 20 s")
        let took = Date().timeIntervalSince(t0)
        let up = try #require(records.all.first { $0.event == .up })
        let rekeyed = try #require(records.all.first { $0.event == .rekeyed })
        print("proxy rekey_time 10 s, server 30 s: rekeyed after \(String(format: "%.1f", took)) s, initiator \(rekeyed.initiator)")
        #expect(up.initiator && up.softSeconds <= 10, "up: initiator \(up.initiator), soft \(up.softSeconds) s")
        #expect(rekeyed.initiator, "the server initiated the rekey")
        #expect(took < 27, "rekeyed after \(took) s: the server's rekey_time could have done it")
        #expect(rekeyed.spiOut != up.spiOut && rekeyed.spiIn != up.spiIn)
    }

    /// Negotiations run side by side: eight devices at once (two flows each, the second serialised behind the
    /// first per device) each get their own IKE_SA and pairs the server holds.
    @Test func devicesNegotiateConcurrently() throws {
        let s = try Setup()
        defer { s.close() }
        let ids = (0..<8).map { UInt64(0xB0 + $0) }
        for (i, id) in ids.enumerated() {
            let identity = String(format: "%016llx@handset.invalid", id), psk = "psk-\(id)-\(s.psk)"
            var d = DeviceRecord(id: id, msisdn: "+1555000\(200 + i)", key: Data(count: 32), innerAddress: IPAddress(10, 201, 1, UInt8(i + 1)))
            d.ikeIdentity = identity
            d.ikePSK = Data(psk.utf8)
            try s.registry.add(d)
            try s.lab.serverLoadPSK(identity: identity, psk: psk)
        }
        let results = Results()
        let negotiator = s.negotiator
        let t0 = Date()
        DispatchQueue.concurrentPerform(iterations: ids.count * 2) { k in
            let id = ids[k / 2], inner = IPAddress(10, 201, 1, UInt8(k / 2 + 1))
            let sel = TrafficSelector(local: inner, remote: Self.service, localPort: 0, remotePort: UInt16(7 + k % 2))
            results.add(negotiator.establish(device: id, handset: inner, selector: sel, template: 1, reused: false))
        }
        print("\(ids.count * 2) concurrent establishes (\(ids.count) devices): \(String(format: "%.0f", Date().timeIntervalSince(t0) * 1000)) ms")
        let transfers = results.all.compactMap { if case .success(let t) = $0 { t } else { nil } }
        #expect(transfers.count == ids.count * 2, "\(results.all.filter { if case .failure = $0 { true } else { false } })")
        let sas = try s.lab.serverSAs()
        #expect(sas.count == ids.count)
        let serverSPIs = Set(sas.flatMap { $0.sa.section("child-sas")?.sections.compactMap { $0.section.string("spi-in") } ?? [] })
        #expect(serverSPIs == Set(transfers.map { Self.hex($0.outboundSPI) }))
    }

    @Test func aWrongPSKIsAuthenticationFailed() throws {
        let s = try Setup(serverPSK: "not-the-device-psk")
        defer { s.close() }
        let (r, seconds) = s.establish()
        #expect(r == .failure(.authenticationFailed))
        #expect(seconds < 4)
    }

    @Test func noCommonESPProposalIsNoProposalChosen() throws {
        let s = try Setup { $0.espProposals = "aes192gcm16" }
        defer { s.close() }
        let (r, seconds) = s.establish()
        #expect(r == .failure(.noProposalChosen))
        #expect(seconds < 4)
    }

    @Test func aServerThatIsGoneTimesOut() throws {
        let s = try Setup()
        defer { s.close() }
        let pid = try String(contentsOf: s.lab.dir.appendingPathComponent("srv.pid"), encoding: .utf8)
        kill(pid_t(pid.trimmingCharacters(in: .whitespacesAndNewlines))!, SIGKILL)
        let (r, seconds) = s.establish()
        #expect(r == .failure(.timeout))
        #expect(seconds < 6, "bounded by the configured 3 s")
    }

    /// An `unreachable` route for the server (never a link taken down: the route would then fall through to the
    /// default route, and nothing may leave for 10.x outside our namespaces).
    @Test func aServerWithoutARouteIsUnreachable() throws {
        let s = try Setup()
        let host = "\(s.lab["SRV_ADDR"])/32"
        try IKELab.output("/usr/sbin/ip", ["route", "add", "unreachable", host])
        defer {
            _ = try? IKELab.output("/usr/sbin/ip", ["route", "del", "unreachable", host])
            s.close()
        }
        let (r, seconds) = s.establish()
        #expect(r == .failure(.unreachable))
        #expect(seconds < 1)
    }
}

enum Opened: Equatable {
    case transfer(KDSATransfer)
    case delete(UInt32, UInt32)
}

extension StrongSwanNegotiatorTests {
    /// Opens a downlink as the handset would (the device's current key).
    static func open(_ d: Downlink, _ registry: DeviceRegistry) throws -> Opened? {
        let dev = try #require(try registry.device(id: device))
        var k = DeliveryKeys()
        _ = dev.key.withUnsafeBytes { k.derive(deviceKey: $0, deviceID: device, epoch: UInt16(dev.epoch)) }
        let h = try #require(d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) })
        var plain = [UInt8](repeating: 0, count: d.bytes.count)
        let n = try #require(d.bytes.withUnsafeBytes { w in plain.withUnsafeMutableBytes { k.open(w, header: h, direction: .down, into: $0) } })
        return plain[0..<n].withUnsafeBytes { p -> Opened? in
            switch KDBody.decode(h.type, p) {
            case .saTransfer(let t)?: .transfer(t)
            case .saDelete(let x)?: .delete(x.outboundSPI, x.inboundSPI)
            default: nil
            }
        }
    }
}

final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var r: [Result<KDSATransfer, NegotiationFailure>] = []
    func add(_ x: Result<KDSATransfer, NegotiationFailure>) { lock.withLock { r.append(x) } }
    var all: [Result<KDSATransfer, NegotiationFailure>] { lock.withLock { r } }
}

final class Pushed: @unchecked Sendable {
    private let lock = NSLock()
    private var sent: [Downlink] = []
    func send(_ d: [Downlink]) { lock.withLock { sent += d } }
    var downlinks: [Downlink] { lock.withLock { sent } }
}

/// Key records as the negotiator's keylog tap sees them, keys wiped (only events, SPIs and lifetimes are looked at).
final class KeyRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [KeyRecord] = []
    func add(_ r: KeyRecord) {
        var r = r
        r.wipe()
        lock.withLock { records.append(r) }
    }
    var all: [KeyRecord] { lock.withLock { records } }
}
