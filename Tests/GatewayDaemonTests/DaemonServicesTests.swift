import Foundation
@testable import Gateway
@testable import GatewayDaemon
@testable import HandsetCore
import Logging
import NIOHTTP1
import SMPP
import Testing

/// The daemon's back-end services (secret data, fetch), the back-end socket (`negotiator = socket`) and the
/// loopback admin routes.
@Suite struct DaemonServicesTests {
    static func dir() throws -> String {
        // Short: a Unix socket path must fit in 108 bytes.
        let d = "/tmp/gwsvc-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: d + "/smpp.pw", contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o600])
        return d
    }

    static func config(_ extra: String, dir: String) throws(ConfigError) -> DaemonConfig {
        // `extra` may choose its own negotiator in place of the minimal file's.
        let base = extra.contains("negotiator =") ? DaemonConfigTests.minimal.replacingOccurrences(of: "\nnegotiator = emulated", with: "")
                                                  : DaemonConfigTests.minimal
        return try DaemonConfig.parse(base + "\ngateway_number = +15550199\n" + extra, file: "gw.conf", baseDirectory: dir)
    }

    static func transfer() -> KDSATransfer {
        let k1 = [UInt8](repeating: 0x11, count: 32).withUnsafeBytes { KeyBytes($0) }
        let k2 = [UInt8](repeating: 0x22, count: 32).withUnsafeBytes { KeyBytes($0) }
        return KDSATransfer(requestID: 0, outboundSPI: 0x5000_0000, outboundKey: k1, outboundSalt: 7, inboundSPI: 0x5000_0001,
                            inboundKey: k2, inboundSalt: 9, peer: IPAddress(127, 0, 0, 1), peerPort: 4500, prefix: 32,
                            proto: IPProto.udp, localPort: 9000, remotePort: 7, softSeconds: 30, hardSeconds: 60)
    }

    // MARK: config

    @Test func serviceKeysParse() throws {
        let d = try Self.dir()
        _ = FileManager.default.createFile(atPath: d + "/ca.pem", contents: Data("x".utf8))
        let c = try Self.config("""
            negotiator = socket
            backend_socket = backend.sock
            secret_service = socket
            fetch = https
            fetch_ca_file = ca.pem
            fetch_timeout = 5
            admin = on
            """, dir: d)
        #expect(c.negotiator == .socket(path: d + "/backend.sock", timeout: 10))
        #expect(c.services.backendSocket == d + "/backend.sock")
        #expect(c.services.secret == .socket && c.services.admin)
        #expect(c.services.fetch == .https(caFile: d + "/ca.pem", timeout: 5))
        let plain = try Self.config("", dir: d)
        #expect(plain.services.secret == .off && plain.services.fetch == .off && !plain.services.admin)
    }

    /// Rules across keys name the key and line that break them.
    @Test(arguments: [
        ("negotiator = socket", "negotiator", "needs backend_socket"),
        ("secret_service = socket", "secret_service", "needs backend_socket"),
        ("secret_service = maybe", "secret_service", "receipt"),
        ("fetch_timeout = 5", "fetch_timeout", "only used with fetch = https"),
        ("fetch = ftp", "fetch", "off or https"),
        ("fetch_ca_file = /nonexistent/ca.pem", "fetch_ca_file", "not readable"),
        ("admin = on\nhttp_listen = 0.0.0.0:9464", "admin", "loopback"),
    ])
    func aBadServiceKeyIsNamed(line: String, key: String, why: String) throws {
        let d = try Self.dir()
        let e = try #require(throws: ConfigError.self) { try Self.config(line + "\n", dir: d) }
        #expect(e.key == key)
        #expect(e.line > 0)
        #expect(e.reason.contains(why), "\(e)")
    }

    // MARK: back-end socket

    /// The transfer the back end makes reaches the gateway intact; its failures keep their kind.
    @Test func socketNegotiatorCarriesTransfersAndFailures() throws {
        let d = try Self.dir()
        let seen = LockedBox<[BackendRequest]>([])
        let fail = LockedBox(false)
        let server = try BackendSocketServer(path: d + "/b.sock") { r in
            seen.update { $0.append(r) }
            if r.op == .forget { return BackendResponse(ok: true) }
            return fail.get() ? .failed(.noProposalChosen) : .established(Self.transfer())
        }
        defer { server.stop() }
        let n = SocketNegotiator(client: BackendSocketClient(path: d + "/b.sock", timeout: 2), logger: Logger(label: "t"))
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1), localPort: 9000, remotePort: 7)
        let got = n.establish(device: 0xFFFF_0000_0000_0001, handset: IPAddress(10, 0, 0, 2), selector: sel, template: 2, reused: true)
        #expect(got == .success(Self.transfer()))
        let r = try #require(seen.get().first)
        // 64-bit ids survive JSON as decimal strings; the flow arrives as sent.
        #expect(r.op == .establish && r.deviceID == 0xFFFF_0000_0000_0001 && r.selector == sel && r.template == 2 && r.reused == true)
        fail.set(true)
        #expect(n.establish(device: 1, handset: IPAddress(10, 0, 0, 2), selector: sel, template: 0, reused: false)
                == .failure(.noProposalChosen))
        n.forget(device: 5)
        #expect(seen.get().last?.op == .forget && seen.get().last?.deviceID == 5)
    }

    @Test func noListenerIsUnreachableASilentOneATimeoutGarbageARefusal() throws {
        let d = try Self.dir()
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1), localPort: 0, remotePort: 7)
        let none = SocketNegotiator(client: BackendSocketClient(path: d + "/none.sock", timeout: 1), logger: Logger(label: "t"))
        #expect(none.establish(device: 1, handset: sel.local, selector: sel, template: 0, reused: false) == .failure(.unreachable))

        // A listener that never answers.
        let silent = try UnixSocket.listen(d + "/silent.sock")
        defer { close(silent) }
        let slow = SocketNegotiator(client: BackendSocketClient(path: d + "/silent.sock", timeout: 1), logger: Logger(label: "t"))
        let t0 = Date()
        #expect(slow.establish(device: 1, handset: sel.local, selector: sel, template: 0, reused: false) == .failure(.timeout))
        #expect(Date().timeIntervalSince(t0) < 3)

        // An answer that claims success but carries no valid sa-transfer is never a transfer.
        let liar = try BackendSocketServer(path: d + "/liar.sock") { _ in
            var r = BackendResponse(ok: true)
            r.transfer = "00ff"
            return r
        }
        defer { liar.stop() }
        let bad = SocketNegotiator(client: BackendSocketClient(path: d + "/liar.sock", timeout: 2), logger: Logger(label: "t"))
        guard case .failure(.refused) = bad.establish(device: 1, handset: sel.local, selector: sel, template: 0, reused: false) else {
            Issue.record("a garbled transfer was accepted")
            return
        }
    }

    /// The socket file is the owner's only; a request that is not JSON is refused and counted, and the server
    /// goes on answering.
    @Test func theBackendSocketIsOwnerOnlyAndRefusesGarbage() throws {
        let d = try Self.dir()
        let server = try BackendSocketServer(path: d + "/b.sock") { _ in BackendResponse(ok: true) }
        defer { server.stop() }
        var st = stat()
        #expect(stat(d + "/b.sock", &st) == 0)
        #expect(st.st_mode & 0o077 == 0)
        let fd = try #require(try? UnixSocket.connect(d + "/b.sock").get())
        defer { close(fd) }
        UnixSocket.setTimeout(fd, seconds: 2)
        #expect(UnixSocket.writeAll(fd, Data("not json\n".utf8)))
        let line = try UnixSocket.readLine(fd, max: 4096, deadline: Date().addingTimeInterval(2)).get()
        let answer = try JSONDecoder().decode(BackendResponse.self, from: Data(line))
        #expect(!answer.ok && answer.reason == "malformed request")
        #expect(server.malformed == 1 && server.requests == 0)
        #expect(BackendSocketClient(path: d + "/b.sock").call(BackendRequest(op: .forget, device: 1)) == .success(BackendResponse(ok: true)))
        #expect(server.requests == 1)
    }

    // MARK: services

    @Test func secretServiceModes() throws {
        let d = try Self.dir()
        let metrics = GatewayMetrics()
        let off = DaemonServices(config: try Self.config("", dir: d), metrics: metrics, logger: Logger(label: "t"))
        #expect(off.secret(device: 1, channel: 1, data: [1, 2, 3]) == nil)
        #expect(metrics.exposition().contains(#"gateway_service_failures_total{service="secret",why="disabled"} 1"#))

        let receipt = DaemonServices(config: try Self.config("secret_service = receipt", dir: d), metrics: metrics,
                                     logger: Logger(label: "t"))
        #expect(receipt.secret(device: 1, channel: 3, data: [1, 2, 3]) == Array("received 3 secret bytes on channel 3".utf8))

        let got = LockedBox<[UInt8]>([])
        let server = try BackendSocketServer(path: d + "/b.sock") { r in
            got.set(Backend.bytes(r.data ?? "") ?? [])
            var a = BackendResponse(ok: true)
            a.reply = Backend.hex(Array("ok \(r.channel ?? 0)".utf8))
            return a
        }
        let socket = DaemonServices(config: try Self.config("secret_service = socket\nbackend_socket = b.sock", dir: d),
                                    metrics: metrics, logger: Logger(label: "t"))
        #expect(socket.secret(device: 9, channel: 4, data: Array("PIN 1234".utf8)) == Array("ok 4".utf8))
        #expect(got.get() == Array("PIN 1234".utf8))
        server.stop()
        #expect(socket.secret(device: 9, channel: 4, data: [1]) == nil)
        #expect(metrics.exposition().contains(#"gateway_service_failures_total{service="secret",why="unreachable"} 1"#))
    }

    @Test func fetchIsHTTPSOnlyAndFailuresAre502() throws {
        let d = try Self.dir()
        let metrics = GatewayMetrics()
        let off = DaemonServices(config: try Self.config("", dir: d), metrics: metrics, logger: Logger(label: "t"))
        #expect(off.fetch(device: 1, url: "https://127.0.0.1/").status == 502)
        let on = DaemonServices(config: try Self.config("fetch = https\nfetch_timeout = 3", dir: d), metrics: metrics,
                                logger: Logger(label: "t"))
        for url in ["file:///etc/passwd", "http://127.0.0.1/", "gopher://x", "https://"] {
            #expect(on.fetch(device: 1, url: url).status == 400, "\(url)")
        }
        // Nothing listens on port 1: curl fails, the handset gets 502.
        let r = on.fetch(device: 1, url: "https://127.0.0.1:1/")
        #expect(r.status == 502)
        let text = metrics.exposition()
        #expect(text.contains(#"gateway_service_failures_total{service="fetch",why="not_https"} 4"#))
        #expect(text.contains(#"gateway_service_failures_total{service="fetch",why="upstream"} 1"#))
    }

    // MARK: SMPP

    /// Delivery receipts and outbox refusals (issue 17 item 4) are published like every ESME counter.
    @Test func receiptsAndOutboxRefusalsReachMetrics() {
        let metrics = GatewayMetrics()
        var c = ESMECounters()
        c.deliveryReceipts = 2
        c.outboxRefused = 1
        metrics.observe(c)
        let text = metrics.exposition()
        #expect(text.contains("\ngateway_smpp_delivery_receipts_total 2\n"))
        #expect(text.contains("\ngateway_smpp_outbox_refused_total 1\n"))
    }

    /// negotiator = strongswan: the IKE engine's counters are published as gateway_ike_<name>_total (operators and
    /// `handset-emu run --server strongswan` read them), each observation adding only what is new.
    @Test func ikeCountersReachMetrics() {
        let metrics = GatewayMetrics()
        var c = StrongSwanNegotiator.Counters()
        c.established = 3
        c.peerTransfers = 2
        c.virtualIPRefused = 1
        metrics.observe(c)
        c.established = 5
        metrics.observe(c)
        let text = metrics.exposition()
        #expect(text.contains("\ngateway_ike_established_total 5\n"))
        #expect(text.contains("\ngateway_ike_peer_transfers_total 2\n"))
        #expect(text.contains("\ngateway_ike_virtual_ip_refused_total 1\n"))
        #expect(text.contains("\ngateway_ike_transport_with_virtual_ip_total 0\n"))
        #expect(text.contains("\ngateway_ike_deletes_withheld_total 0\n"))
        #expect(text.contains("\ngateway_ike_busy_total 0\n"))
    }

    // MARK: admin routes

    @Test func adminRoutesReadStateAndQueueWork() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gwadm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let registry = try DeviceRegistry(path: dir.appendingPathComponent("reg.sqlite").path,
                                          kek: try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("reg.kek").path))
        let id: UInt64 = 0x4853_0000_0000_0009
        let key = Data((0..<32).map { UInt8($0) })
        _ = try registry.add(DeviceRecord(id: id, msisdn: "+15550100009", key: key, innerAddress: IPAddress(10, 0, 0, 9)))
        let peer = FixedPeer(Self.transfer())
        let gateway = Gateway(registry: registry, negotiator: peer)
        let serializer = DeviceSerializer(maxWorkers: 4)
        let sent = LockedBox<[Downlink]>([])
        let admin = AdminRoutes.handler(registry: registry, gateway: gateway, serializer: serializer,
                                        send: { d in sent.update { $0 += d } })

        let (status, _, body) = admin(.GET, "/admin/device/\(id)")
        #expect(status == .ok)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(obj["epoch"] as? Int == 0 && obj["pending_key"] as? Bool == false && obj["device"] as? String == "\(id)")
        #expect(!body.contains("key\":\"") && obj.count == 6)  // state only, never a key
        #expect(admin(.GET, "/admin/device/12345").0 == .notFound)
        #expect(admin(.GET, "/admin/device/x").0 == .badRequest)

        #expect(admin(.POST, "/admin/push?device=\(id)&local=10.0.0.9&remote=127.0.0.1&local_port=9000").0 == .accepted)
        #expect(serializer.waitIdle(timeout: 5))
        #expect(sent.get().count == 1 && sent.get().first?.type == .saTransfer && sent.get().first?.msisdn == "+15550100009")
        #expect(gateway.counters.saDelivered == 1)

        #expect(admin(.POST, "/admin/delete?device=\(id)&outbound=1&inbound=2").0 == .accepted)
        #expect(serializer.waitIdle(timeout: 5))
        #expect(sent.get().last?.type == .saDelete)
        #expect(admin(.POST, "/admin/push?device=\(id)&local=nowhere&remote=127.0.0.1").0 == .badRequest)
        #expect(admin(.DELETE, "/admin/push").0 == .methodNotAllowed)
        #expect(sent.get().count == 2)  // the refused requests queued nothing
    }

    /// With `admin = off` the routes do not exist.
    @Test func withoutAdminTheRoutesAre404() throws {
        let http = HTTPEndpoint(host: "127.0.0.1", port: 0, metrics: GatewayMetrics(), logger: Logger(label: "t"), ready: { true })
        let port = try http.bind()
        #expect(try HTTPEndpointTests.get(port, "/admin/device/1").0 == 404)
        let withAdmin = HTTPEndpoint(host: "127.0.0.1", port: 0, metrics: GatewayMetrics(), logger: Logger(label: "t"),
                                     ready: { true }, admin: { _, _ in (.ok, "text/plain", "admin\n") })
        let port2 = try withAdmin.bind()
        #expect(try HTTPEndpointTests.get(port2, "/admin/device/1", method: "POST") == (200, "admin\n"))
    }
}

/// A peer that hands out one fixed pair.
final class FixedPeer: PeerNegotiator, @unchecked Sendable {
    let transfer: KDSATransfer
    init(_ t: KDSATransfer) { transfer = t }
    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure> { .success(transfer) }
    func forget(device: UInt64) {}
}
