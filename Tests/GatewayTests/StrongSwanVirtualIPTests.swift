import Foundation
import Gateway
import HandsetCore
import ProxyIKE
import Testing

/// Tunnel mode with a virtual IP (issue 15) against the lab's REAL stock charon: the server's connection has an
/// address pool the test chooses, the proxy asks for a virtual IP (`vips = 0.0.0.0`), and the address the server
/// assigns must be the device's inner address, the one the handset sends from.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct StrongSwanVirtualIPTests {
    static let device: UInt64 = 0xD1
    static let identity = "00000000000000d1@handset.invalid"
    /// The pool the server hands out from: 10.202.7.0/28, whose first lease is 10.202.7.1.
    static let pool = "10.202.7.0/28"
    static let firstLease = IPAddress(10, 202, 7, 1)
    static let service = IPAddress(10, 200, 0, 1)

    struct Setup {
        let lab: IKELab
        let negotiator: StrongSwanNegotiator
        let inner: IPAddress
        var server: IPAddress { IPAddress(dottedQuad: lab["SRV_ADDR"])! }

        init(inner: IPAddress) throws {
            self.inner = inner
            lab = try IKELab()
            do {
                let psk = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                try lab.serverLoadPSK(identity: StrongSwanVirtualIPTests.identity, psk: psk)
                try Self.loadServer(lab: lab)
                let registry = try DeviceRegistry(path: lab.dir.appendingPathComponent("reg.sqlite").path,
                                                  kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("reg.kek").path))
                var d = DeviceRecord(id: StrongSwanVirtualIPTests.device, msisdn: "+15550000209", key: Data(KeyMaterial.random(32)),
                                     innerAddress: inner)
                d.ikeIdentity = StrongSwanVirtualIPTests.identity
                d.ikePSK = Data(psk.utf8)
                try registry.add(d)
                var c = StrongSwanNegotiator.Configuration(
                    viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
                    ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
                c.timeout = 3
                c.virtualIP = true
                negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
                try negotiator.start(devices: [StrongSwanVirtualIPTests.device])
            } catch {
                lab.down()
                throw error
            }
        }

        /// A pool and a conn of the server's own for the device (more specific than `hs`): remote_ts is the
        /// default, `dynamic`, i.e. whatever address the pool assigned.
        static func loadServer(lab: IKELab) throws {
            var addrs = VICIMessage()
            addrs.add("addrs", StrongSwanVirtualIPTests.pool)
            var pool = VICIMessage()
            pool.add("hsvip", section: addrs)
            try lab.serverCallChecked("load-pool", pool)
            var local = VICIMessage()
            local.add("auth", "psk")
            local.add("id", lab["SRV_ID"])
            var remote = VICIMessage()
            remote.add("auth", "psk")
            remote.add("id", StrongSwanVirtualIPTests.identity)
            var child = VICIMessage()
            child.add("local_ts", list: ["10.200.0.1/32"])
            child.add("esp_proposals", list: ["aes256gcm16"])
            try lab.serverLoadConn("hsvip", local: local, remote: remote, child: child, pools: ["hsvip"])
        }


        func establish() -> Result<KDSATransfer, NegotiationFailure> {
            let sel = TrafficSelector(local: inner, remote: StrongSwanVirtualIPTests.service, localPort: 0, remotePort: 7)
            return negotiator.establish(device: StrongSwanVirtualIPTests.device, handset: inner, selector: sel, template: 1,
                                        reused: false)
        }

        func close() {
            negotiator.stop()
            lab.down()
        }
    }

    @Test func theVirtualIPFromThePoolIsTheHandsetsInnerAddress() throws {
        let s = try Setup(inner: Self.firstLease)
        defer { s.close() }
        guard case .success(let t) = s.establish() else {
            Issue.record("establish failed\n\(s.lab.tail("PROXY_LOG", lines: 30))\n\(s.lab.tail("SRV_LOG", lines: 30))")
            return
        }
        // The server assigned the pool's address and narrowed the CHILD_SA to it.
        let sa = try #require(try s.lab.serverSAs().first { $0.name == "hsvip" })
        #expect(sa.sa.list("remote-vips") == ["10.202.7.1"])
        let child = try #require(try s.lab.serverChildren().first { $0.string("spi-in") == StrongSwanNegotiatorTests.hex(t.outboundSPI) })
        #expect(child.list("remote-ts") == ["10.202.7.1/32[udp]"])  // the flow asked for: UDP from any port
        // A datagram from the virtual IP, sealed by HandsetCore, opens at the server.
        try StrongSwanNegotiatorTests.sendESP(t, to: s.server, from: Self.firstLease)
        #expect(try StrongSwanNegotiatorTests.eventually(2) {
            try s.lab.serverChildren().first { $0.string("spi-in") == StrongSwanNegotiatorTests.hex(t.outboundSPI) }?
                .string("packets-in") == "1"
        })
        #expect(s.negotiator.counters.virtualIPRefused == 0)
    }

    @Test func aVirtualIPThatIsNotTheDevicesAddressIsRefused() throws {
        let s = try Setup(inner: IPAddress(10, 202, 7, 9))
        defer { s.close() }
        let r = s.establish()
        guard case .failure(.refused(let why)) = r else { Issue.record("expected refused, got \(r)"); return }
        #expect(why.contains("10.202.7.1/32") && why.contains("10.202.7.9"))
        #expect(s.negotiator.counters.virtualIPRefused == 1 && s.negotiator.counters.established == 0)
        // The proxy ended the IKE_SA: the server keeps no CHILD_SA (and no lease in use) for the handset.
        #expect(try StrongSwanNegotiatorTests.eventually(3) { try s.lab.serverChildren().isEmpty })
    }
}
