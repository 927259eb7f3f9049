import Foundation
import Gateway
import HandsetCore
import NIOPosix
import Testing

/// The StrongSwanNegotiator on the PostgreSQL registry (a fleet's store) against the real lab server: its credential
/// lookup blocks on PostgresNIO, which the store refuses on a NIO event loop. The daemon calls `establish` from its
/// device workers (plain threads); here from a plain thread too, and once from an event loop, where the refusal must
/// come back as a registry failure, not as "no credentials provisioned".
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil && PostgresTestServer.available,
                             "\(IKELab.unavailable ?? PostgresTestServer.missing)"))
struct StrongSwanPostgresTests {
    @Test func negotiatesWithCredentialsFromPostgresAndReportsAStoreRefusalAsSuch() throws {
        let server = try PostgresTestServer.shared.get()
        let lab = try IKELab()
        defer { lab.down() }
        let registry = try RegistryStoreSpec.open(server.spec(try server.createDatabase()),
                                                  kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("k").path))
        defer { registry.disconnect() }
        let device: UInt64 = 0xA2
        let inner = IPAddress(10, 201, 0, 6)
        let identity = "00000000000000a2@handset.invalid"
        let psk = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        var d = DeviceRecord(id: device, msisdn: "+15550000162", key: Data(KeyMaterial.random(32)), innerAddress: inner)
        d.ikeIdentity = identity
        d.ikePSK = Data(psk.utf8)
        _ = try registry.add(d)
        try lab.serverLoadPSK(identity: identity, psk: psk)
        var c = StrongSwanNegotiator.Configuration(
            viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
            ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
        c.timeout = 3
        let negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
        try negotiator.start(devices: [device])
        defer { negotiator.stop() }
        @Sendable func establish(port: UInt16) -> Result<KDSATransfer, NegotiationFailure> {
            negotiator.establish(device: device, handset: inner,
                                 selector: TrafficSelector(local: inner, remote: IPAddress(10, 200, 0, 1), localPort: 0, remotePort: port),
                                 template: 1, reused: false)
        }

        // From a plain thread, as the daemon's device workers call it: the server's SAs.
        guard case .success(let t) = establish(port: 7) else { Issue.record("establish failed:\n\(lab.tail("PROXY_LOG"))"); return }
        #expect(t.outboundSPI != 0 && t.inboundSPI != 0)

        // From an event loop the store refuses the lookup: a refusal naming the registry, and nothing negotiated.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let onLoop = try group.next().submit { establish(port: 9) }.wait()
        guard case .failure(.refused(let why)) = onLoop else { Issue.record("on an event loop: \(onLoop)"); return }
        #expect(why.contains("registry"), "\(why)")
        #expect(negotiator.counters.established == 1)
    }
}
