import Foundation
import Gateway
import HandsetCore
import ProxyIKE
import Testing

/// The gateway against a lab server whose child says `mode = transport` (issue 15, item 7). The lab's strongSwan
/// 5.9.8 cannot hold a transport-mode SA at all (kernel-libipsec: "IPsec SA: unsupported mode", and no kernel ESP
/// here; tests/interop/test_ike_transport_mode.py shows it with charon alone), so the proxy keeps asking for tunnel
/// mode. What the gateway does with such a server: a clear refusal, no SA, nothing pushed (docs/ike-proxy.md,
/// "Transport mode").
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct StrongSwanTransportModeTests {
    static func serverSide(_ lab: IKELab, identity: String) -> (local: VICIMessage, remote: VICIMessage) {
        var local = VICIMessage(); local.add("auth", "psk"); local.add("id", lab["SRV_ID"])
        var remote = VICIMessage(); remote.add("auth", "psk"); remote.add("id", identity)
        return (local, remote)
    }

    /// The handset's key request: the server's transport child (selectors as a user writes them for tunnel mode)
    /// answers the proxy's tunnel request with TS_UNACCEPTABLE, since charon narrows a transport child to the IKE
    /// addresses. The handset gets `denied` at once, not a timeout; the server holds no CHILD_SA.
    @Test func aTransportChildRefusesTheHandsetsRequestAtOnce() throws {
        let s = try StrongSwanNegotiatorTests.Setup()
        defer { s.close() }
        var child = VICIMessage()
        child.add("local_ts", list: ["\(StrongSwanNegotiatorTests.service.dottedQuad)/32"])
        child.add("remote_ts", list: [s.lab["HANDSET_NET"]])
        child.add("esp_proposals", list: ["aes256gcm16"])
        child.add("mode", "transport")
        let (local, remote) = Self.serverSide(s.lab, identity: s.identity)
        try s.lab.serverLoadConn("hs", local: local, remote: remote, child: child)
        let (r, seconds) = s.establish()
        guard case .failure(let f) = r else { Issue.record("established against a transport child"); return }
        #expect(f == .refused("the server accepts none of the flow's traffic selectors (TS_UNACCEPTABLE)"), "\(f)")
        #expect(f.status == .denied)
        #expect(seconds < s.negotiator.config.timeout, "answered in \(seconds) s, the bound is \(s.negotiator.config.timeout) s")
        let refusal = s.lab.tail("SRV_LOG").split(separator: "\n").first { $0.contains("unacceptable") }
        #expect(refusal?.contains("traffic selectors 10.200.0.1/32[udp/echo] === 10.201.0.5/32") == true,
                "\(s.lab.tail("SRV_LOG", lines: 20))")
        #expect(try s.lab.serverChildren().isEmpty)
        #expect(s.negotiator.counters.failed == 1 && s.negotiator.counters.established == 0)
    }

    /// The server starts a transport-mode CHILD_SA toward the device: its selectors are the IKE endpoints, which the
    /// device's connection (its inner address, tunnel mode) does not cover, so the proxy refuses it; the gateway
    /// pushes nothing and the server holds no CHILD_SA.
    @Test func aServerInitiatedTransportSAIsRefusedAndNothingPushed() throws {
        let s = try StrongSwanNegotiatorTests.Setup()
        defer { s.close() }
        let gateway = Gateway(registry: s.registry, negotiator: s.negotiator)
        let pushed = Pushed()
        s.negotiator.route(to: gateway) { pushed.send($0) }
        var child = VICIMessage()  // the default selectors: `dynamic`, the IKE addresses
        child.add("esp_proposals", list: ["aes256gcm16"])
        child.add("mode", "transport")
        let started = try StrongSwanNegotiatorTests.serverInitiates(s, child: child)
        #expect(started.string("success") != "yes")
        #expect(s.lab.tail("SRV_LOG").contains("received TS_UNACCEPTABLE notify, no CHILD_SA built"), "\(s.lab.tail("SRV_LOG", lines: 20))")
        #expect(try s.lab.serverChildren().isEmpty)
        usleep(300_000)  // a record, had there been one, is handled on the key socket's own thread
        #expect(pushed.downlinks.isEmpty && gateway.counters.saPushed == 0)
        #expect(s.negotiator.counters.peerTransfers == 0 && s.negotiator.counters.unmappable == 0)
    }
}
