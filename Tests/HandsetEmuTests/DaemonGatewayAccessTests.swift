import EmulatorSupport
import Foundation
import Gateway
import HandsetCore
import Testing
@testable import handset_emu

/// What `handset-emu run` reads from the daemon and serves it.
@Suite struct DaemonGatewayAccessTests {
    /// Every GatewayCounters field is read from /metrics: one added later without a name here would read 0 for
    /// ever, and a scenario waiting on it would time out rather than say why.
    @Test func everyCounterHasItsMetricName() {
        let mapped = Set(DaemonGatewayAccess.fields.map(\.0))
        for child in Mirror(reflecting: GatewayCounters()).children {
            #expect(mapped.contains(child.label!), "\(child.label!) is not read from /metrics")
        }
    }

    /// The emulator's back end: the opposite party's pair for an establish (keys the peer holds), a refusal for an
    /// address another device holds, and the secret service's answer (recorded).
    @Test func theEmulatorBackendNegotiatesAndRecordsSecrets() throws {
        let peer = try EmulatedPeer()
        defer { peer.stop() }
        let services = EmuServices()
        let handle = EmulatorBackend.handler(peer: peer, services: services)
        let a = IPAddress(10, 0, 0, 2)
        let sel = TrafficSelector(local: a, remote: peer.address, localPort: 0, remotePort: EmulatedPeer.echoPort)
        peer.lifetimes = (30, 60)
        let r = handle(.establish(device: 1, handset: a, selector: sel, template: 1, reused: false))
        guard case .success(let t) = r.negotiation else { Issue.record("no transfer: \(r)"); return }
        #expect(t.remotePort == EmulatedPeer.echoPort && t.softSeconds == 30 && t.hardSeconds == 60)
        #expect(peer.installedSAs(device: 1) == 2)
        let other = handle(.establish(device: 2, handset: a, selector: sel, template: 1, reused: false))
        guard case .failure(.refused) = other.negotiation else { Issue.record("address of device 1 given to 2"); return }
        _ = handle(BackendRequest(op: .forget, device: 1))
        #expect(peer.installedSAs(device: 1) == 0)

        var s = BackendRequest(op: .secret, device: 1)
        s.channel = 2
        s.data = Backend.hex(Array("PIN".utf8))
        let answer = handle(s)
        #expect(answer.reply.flatMap(Backend.bytes) == Array("received 3 secret bytes on channel 2".utf8))
        #expect(services.secretsSeen == [Array("PIN".utf8)])
    }
}
