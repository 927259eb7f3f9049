import Foundation
import Gateway
import HandsetCore
import ModemSim
import ProxyIKE
import Testing

/// The whole path of issue 15 with real parts: the proxy charon reaches the stock server only through the packet
/// gateway's relay (ModemSim.PacketGateway), so its IKE and the handset's ESP share the handset's public endpoint.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct RelayLabTests {
    typealias Lab = StrongSwanNegotiatorTests

    /// ESP the relay handed down to the handset's side.
    final class Down: @unchecked Sendable {
        private let lock = NSLock()
        private var got: [[UInt8]] = []
        func add(_ b: [UInt8]) { lock.withLock { got.append(b) } }
        var all: [[UInt8]] { lock.withLock { got } }
    }

    struct Relayed {
        let setup: Lab.Setup
        let relay: PacketGateway
        let down: Down

        init() throws {
            // The relay first: the proxy's connection names its proxy-side port.
            let lab = try IKELab()
            let down = Down()
            do {
                relay = try PacketGateway(
                    config: PacketGatewayConfig(publicEndpoint: UDPPeer(host: lab["PUB_ADDR"], port: 4500),
                                                ikeProxy: UDPPeer(host: "127.0.0.1", port: Int(lab["PROXY_NATT_PORT"])!),
                                                oppositeParty: UDPPeer(host: lab["SRV_ADDR"], port: 4500)),
                    queue: DispatchQueue(label: "relay")) { bytes, _ in down.add(bytes); return true }
            } catch {
                lab.down()
                throw error
            }
            let proxySide = relay.proxySide.port
            setup = try Lab.Setup(lab: lab) { c in
                c.ikeRemoteAddress = "127.0.0.1"
                c.ikeRemotePort = UInt16(proxySide)
                c.ikeLocalPort = UInt16(lab["PROXY_NATT_PORT"])!
            }
            self.down = down
        }

        func close() {
            relay.close()
            setup.close()
        }
    }

    /// Handset-initiated through the relay: the handset's ESP leaves by the public endpoint, the server's echo
    /// comes back to it and opens under the transfer's inbound SA.
    @Test func theEchoAnswersThroughTheRelay() throws {
        let r = try Relayed()
        defer { r.close() }
        let (result, seconds) = r.setup.establish()
        print("establish through the relay: \(String(format: "%.1f", seconds * 1000)) ms")
        guard case .success(let t) = result else { Issue.record("establish failed: \(result), relay \(r.relay.counters), proxy log: \(r.setup.lab.tail("PROXY_LOG", lines: 25))"); return }
        #expect(r.relay.counters.ikeToProxy >= 2, "IKE answers reached the proxy through the relay")
        var plane = DataPlane<4, 2>(defaultAction: .discard)
        try Self.install(t, into: &plane, inner: Lab.inner)
        var out = [UInt8](repeating: 0, count: 2048)
        let payload = Array("echo me, stock server".utf8)
        let sealed = payload.withUnsafeBytes { b in
            out.withUnsafeMutableBytes { plane.seal(b, selector: TrafficSelector(local: Lab.inner, remote: Lab.service, localPort: 40000, remotePort: 7), into: $0) }
        }
        guard case .packet(let n, _, _) = sealed else { Issue.record("seal: \(sealed)"); return }
        #expect(r.relay.sendUp(Array(out[0..<n]), to: UDPPeer(host: r.setup.lab["SRV_ADDR"], port: 4500)))
        #expect(Lab.eventually(2) { !r.down.all.isEmpty })
        let esp = try #require(r.down.all.first)
        var plain = [UInt8](repeating: 0, count: 2048)
        let opened = try esp.withUnsafeBytes { e in try plain.withUnsafeMutableBytes { try plane.open(e, into: $0) } }
        guard case .datagram(let sel, let range) = opened else { Issue.record("opened: \(opened)"); return }
        #expect(Array(plain[range]) == payload && sel.remote == Lab.service && sel.remotePort == 7)
    }

    /// The server initiates to the handset's public endpoint (10.99.N.2:4500) from its own port 4500 (a
    /// connection with `local_port = 4500`: sent from 500, charon's IKE_SA_INIT has no non-ESP marker and the relay
    /// rightly takes it for ESP). The relay hands it to the proxy, which answers as the device; the pair is pushed
    /// and the server's echo reaches the handset's side.
    @Test func theServerInitiatesThroughTheRelay() throws {
        let r = try Relayed()
        defer { r.close() }
        let gateway = Gateway(registry: r.setup.registry, negotiator: r.setup.negotiator)
        let pushed = Pushed()
        r.setup.negotiator.route(to: gateway) { pushed.send($0) }
        let lab = r.setup.lab
        var child = VICIMessage()
        child.add("local_ts", list: ["\(Lab.service.dottedQuad)/32"])
        child.add("remote_ts", list: ["\(Lab.inner.dottedQuad)/32"])
        child.add("esp_proposals", list: ["aes256gcm16"])
        var children = VICIMessage(); children.add("out", section: child)
        var local = VICIMessage(); local.add("auth", "psk"); local.add("id", lab["SRV_ID"])
        var remote = VICIMessage(); remote.add("auth", "psk"); remote.add("id", r.setup.identity)
        var conn = VICIMessage()
        conn.add("local_addrs", list: [lab["SRV_ADDR"]])
        conn.add("remote_addrs", list: [lab["PUB_ADDR"]])
        conn.add("local_port", "4500")
        conn.add("remote_port", "4500")
        conn.add("proposals", list: ["aes256-sha256-x25519"])
        conn.add("local", section: local)
        conn.add("remote", section: remote)
        conn.add("children", section: children)
        var m = VICIMessage(); m.add("out", section: conn)
        #expect(try lab.serverCall("load-conn", m).string("success") == "yes")
        var go = VICIMessage()
        go.add("child", "out")
        go.add("ike", "out")
        go.add("timeout", "3000")
        let started = try lab.serverCall("initiate", go)
        #expect(started.string("success") == "yes", "\(started.string("errmsg") ?? ""), relay \(r.relay.counters)")
        #expect(Lab.eventually(2) { pushed.downlinks.count == 1 })
        let opened = try pushed.downlinks.first.flatMap { try Lab.open($0, r.setup.registry) }
        guard case .transfer(let t)? = opened else { Issue.record("pushed: \(String(describing: opened))"); return }
        let server = try #require(try lab.serverChildren().first)
        #expect(server.string("spi-in") == Lab.hex(t.outboundSPI) && server.string("spi-out") == Lab.hex(t.inboundSPI))
    }

    static func install(_ t: KDSATransfer, into plane: inout DataPlane<4, 2>, inner: IPAddress) throws {
        let pattern = SelectorPattern(remote: t.remote ?? t.peer, prefix: Int(t.prefix), proto: t.proto)
        try plane.spd.append(SPDRule(pattern, .protect(template: 1)))
        for (spi, dir, key, salt) in [(t.outboundSPI, SADirection.outbound, t.outboundKey, t.outboundSalt),
                                      (t.inboundSPI, .inbound, t.inboundKey, t.inboundSalt)] {
            let p = SAParameters(spi: spi, direction: dir, algorithm: t.algorithm, keyLength: t.keyLength, salt: salt,
                                 mode: .tunnel(local: inner, remote: t.peer), local: inner, selector: pattern,
                                 peer: t.peer, peerPort: t.peerPort)
            let ok = key.withBytes { k -> Bool in
                do throws(SAError) { _ = try plane.sas.install(p, key: UnsafeRawBufferPointer(rebasing: k[0..<t.keyLength])); return true } catch { return false }
            }
            guard ok else { throw IKELab.LabError(description: "install \(dir)") }
        }
    }
}
