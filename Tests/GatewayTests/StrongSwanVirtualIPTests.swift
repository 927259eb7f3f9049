import Foundation
import Gateway
import HandsetCore
import ModemSim
import ProxyIKE
import Testing

/// Tunnel mode with a virtual IP (issue 15) against the lab's REAL stock charon: the server's connection has an
/// address pool the test chooses, the proxy asks for a virtual IP (`vips = 0.0.0.0`), and the address the server
/// assigns becomes the handset's inner address: the gateway binds it, the sa-transfer names it, the handset adopts it
/// (docs/key-delegation.md §4 flag bit 7).
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
        let registry: DeviceRegistry
        let negotiator: StrongSwanNegotiator
        let inner: IPAddress
        let deviceKey = KeyMaterial.random(32)
        /// With `relayed`: the packet gateway the proxy's IKE and the handset's ESP go through, and what it handed
        /// down to the handset's side.
        let relay: PacketGateway?
        let down: RelayLabTests.Down
        var server: IPAddress { IPAddress(dottedQuad: lab["SRV_ADDR"])! }

        init(inner: IPAddress, relayed: Bool = false) throws {
            self.inner = inner
            lab = try IKELab()
            let down = RelayLabTests.Down()
            self.down = down
            var made: PacketGateway?
            do {
                made = relayed ? try PacketGateway(
                    config: PacketGatewayConfig(publicEndpoint: UDPPeer(host: lab["PUB_ADDR"], port: 4500),
                                                ikeProxy: UDPPeer(host: "127.0.0.1", port: Int(lab["PROXY_NATT_PORT"])!),
                                                oppositeParty: UDPPeer(host: lab["SRV_ADDR"], port: 4500)),
                    queue: DispatchQueue(label: "relay")) { bytes, _ in down.add(bytes); return true } : nil
                relay = made
                let psk = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                try lab.serverLoadPSK(identity: StrongSwanVirtualIPTests.identity, psk: psk)
                try Self.loadServer(lab: lab)
                registry = try DeviceRegistry(path: lab.dir.appendingPathComponent("reg.sqlite").path,
                                              kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("reg.kek").path))
                var d = DeviceRecord(id: StrongSwanVirtualIPTests.device, msisdn: "+15550000209", key: Data(deviceKey),
                                     innerAddress: inner)
                d.ikeIdentity = StrongSwanVirtualIPTests.identity
                d.ikePSK = Data(psk.utf8)
                try registry.add(d)
                var c = StrongSwanNegotiator.Configuration(
                    viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
                    ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
                if let relay = made {
                    c.ikeRemoteAddress = "127.0.0.1"
                    c.ikeRemotePort = UInt16(relay.proxySide.port)
                    c.ikeLocalPort = UInt16(lab["PROXY_NATT_PORT"])!
                }
                c.timeout = 3
                c.virtualIP = true
                negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
                try negotiator.start(devices: [StrongSwanVirtualIPTests.device])
            } catch {
                made?.close()
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
            relay?.close()
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
        #expect(t.handset == Self.firstLease)
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

    /// The device was provisioned with 10.202.7.9; the server's pool gives it 10.202.7.1. The handset (HandsetCore's
    /// key-delegation client, against the real gateway and registry) adopts 10.202.7.1, and its ESP from that
    /// address, through the packet gateway, reaches the server's echo and comes back.
    @Test func theHandsetAdoptsThePoolsAddressAndTheEchoComesBack() throws {
        let provisioned = IPAddress(10, 202, 7, 9)
        let s = try Setup(inner: provisioned, relayed: true)
        defer { s.close() }
        let relay = try #require(s.relay)
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let flash = Flash()
        var st = FlashStore(flash: flash)
        try st.save(KeyState(deviceID: Self.device, key: s.deviceKey.withUnsafeBytes { KeyBytes($0) }))
        var c = try KeyDelegationClient(store: FlashStore(flash: flash))
        c.localAddress = provisioned
        var plane = HandsetPlane()
        try plane.spd.append(SPDRule(SelectorPattern(remote: Self.service, prefix: 32, proto: IPProto.udp), .protect(template: 1)))
        c.boot(now: 0)
        exchange(&c, gateway, plane: &plane)
        #expect(c.phase == .ready)
        c.requestKey(template: 1, selector: TrafficSelector(local: c.innerAddress, remote: Self.service, localPort: 0, remotePort: 7), now: 1)
        exchange(&c, gateway, plane: &plane)
        guard plane.sas.count == 2 else {
            Issue.record("no SA: gateway \(gateway.counters), negotiator \(s.negotiator.counters)\n\(s.lab.tail("PROXY_LOG", lines: 30))")
            return
        }
        // Bound at the gateway, adopted and kept by the handset.
        #expect(c.innerAddress == Self.firstLease && c.counters.addressesAdopted == 1)
        #expect(try s.registry.device(id: Self.device)?.innerAddress == Self.firstLease)
        #expect(gateway.counters.addressesBound == 1)
        #expect(try #require(flash.image).withUnsafeBytes { KeyState.decode($0) }?.innerAddress == Self.firstLease)
        let sa = try #require(try s.lab.serverSAs().first { $0.name == "hsvip" })
        #expect(sa.sa.list("remote-vips") == ["10.202.7.1"])

        // The handset's datagram, from the address it adopted, through the packet gateway to the server's echo.
        let payload = Array("from the pool's address".utf8)
        var out = [UInt8](repeating: 0, count: 2048)
        let sealed = payload.withUnsafeBytes { b in
            out.withUnsafeMutableBytes {
                plane.seal(b, selector: TrafficSelector(local: c.innerAddress, remote: Self.service, localPort: 40000, remotePort: 7), into: $0)
            }
        }
        guard case .packet(let n, _, _) = sealed else { Issue.record("seal: \(sealed)"); return }
        #expect(relay.sendUp(Array(out[0..<n]), to: UDPPeer(host: s.lab["SRV_ADDR"], port: 4500)))
        #expect(StrongSwanNegotiatorTests.eventually(2) { !s.down.all.isEmpty })
        let esp = try #require(s.down.all.first)
        var plain = [UInt8](repeating: 0, count: 2048)
        let opened = try esp.withUnsafeBytes { e in try plain.withUnsafeMutableBytes { try plane.open(e, into: $0) } }
        guard case .datagram(let sel, let range) = opened else { Issue.record("opened: \(opened)"); return }
        #expect(Array(plain[range]) == payload && sel.remote == Self.service && sel.remotePort == 7)
        #expect(sel.local == Self.firstLease && sel.localPort == 40000)
        let child = try #require(try s.lab.serverChildren().first)
        #expect(child.string("packets-in") == "1" && child.string("packets-out") == "1")
    }

    /// Two devices are never bound to one address: when the pool's address is another device's, the transfer is
    /// refused (KD error, counted) and the proxy ends the IKE_SA, so the server keeps no CHILD_SA and no lease.
    @Test func aPoolAddressAnotherDeviceHoldsIsRefusedAndTheIKESAClosed() throws {
        let s = try Setup(inner: IPAddress(10, 202, 7, 9))
        defer { s.close() }
        try s.registry.add(DeviceRecord(id: 0xD2, msisdn: "+15550000210", key: Data(KeyMaterial.random(32)), innerAddress: Self.firstLease))
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let sel = TrafficSelector(local: s.inner, remote: Self.service, localPort: 0, remotePort: 7)
        let answers = gateway.push(device: Self.device, selector: sel)
        #expect(answers.map(\.type) == [.error])
        #expect(gateway.counters.addressInUse == 1 && gateway.counters.saDelivered == 0)
        #expect(try s.registry.device(id: Self.device)?.innerAddress == s.inner)
        #expect(try StrongSwanNegotiatorTests.eventually(3) { try s.lab.serverSAs().isEmpty })
        // The CHILD_SA's down, when the IKE_SA closes, is not the handset's business: it never had the SA.
        #expect(StrongSwanNegotiatorTests.eventually(2) { s.negotiator.counters.deletesWithheld == 1 })
        #expect(s.negotiator.counters.peerDeletes == 0)
    }

    /// Item 2: an SA the server starts whose address the handset cannot be bound to (another device holds it) is
    /// not pushed, is counted, and its IKE_SA is closed.
    @Test func aServerInitiatedSAForAnAddressInUseIsClosed() throws {
        let s = try StrongSwanNegotiatorTests.Setup { $0.virtualIP = true }
        defer { s.close() }
        // Another gateway moved the device meanwhile, and gave its old address to another device: the proxy's
        // loaded connection still names the old one, and the server initiates to it.
        let old = StrongSwanNegotiatorTests.inner
        var d = try #require(try s.registry.device(id: StrongSwanNegotiatorTests.device))
        d.innerAddress = IPAddress(10, 201, 0, 6)
        try s.registry.save(d)
        try s.registry.add(DeviceRecord(id: 0xA2, msisdn: "+15550000162", key: Data(KeyMaterial.random(32)), innerAddress: old))
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let pushed = Pushed()
        s.negotiator.route(to: gateway) { pushed.send($0) }
        let started = try StrongSwanNegotiatorTests.serverInitiates(s)
        #expect(started.string("success") == "yes", "\(started.string("errmsg") ?? ""): \(s.lab.tail("SRV_LOG"))")
        #expect(StrongSwanNegotiatorTests.eventually(2) { gateway.counters.addressInUse == 1 })
        #expect(try StrongSwanNegotiatorTests.eventually(3) { try s.lab.serverSAs().isEmpty })
        // Nothing went to the handset: no sa-transfer, and no sa-delete when closing the IKE_SA brings the plugin's
        // down record for the CHILD_SA the handset never had.
        #expect(StrongSwanNegotiatorTests.eventually(2) { s.negotiator.counters.deletesWithheld == 1 })
        #expect(pushed.downlinks.isEmpty && gateway.counters.saPushed == 0 && s.negotiator.counters.peerDeletes == 0)
        #expect(try s.registry.device(id: StrongSwanNegotiatorTests.device)?.innerAddress == IPAddress(10, 201, 0, 6))
    }
}
