import Foundation
import Gateway
import Testing
import HandsetCore

/// The emulated opposite party keeps each device's SAs apart (issue 12 item 3).
@Suite struct EmulatedPeerTests {
    func selector(_ handset: IPAddress) -> TrafficSelector {
        TrafficSelector(local: handset, remote: IPAddress(127, 0, 0, 1), localPort: 0, remotePort: EmulatedPeer.echoPort)
    }

    @Test func forgettingOneDeviceLeavesTheOthersSAs() throws {
        let peer = try EmulatedPeer()
        defer { peer.stop() }
        let a = IPAddress(10, 77, 0, 1), b = IPAddress(10, 77, 0, 2)
        #expect(peer.establish(device: 0xA, handset: a, selector: selector(a), template: 1, reused: false).isSuccess)
        #expect(peer.establish(device: 0xB, handset: b, selector: selector(b), template: 1, reused: false).isSuccess)
        #expect(peer.installedSAs == 4)
        peer.forget(device: 0xA)
        #expect(peer.installedSAs == 2)
        #expect(peer.installedSAs(device: 0xA) == 0 && peer.installedSAs(device: 0xB) == 2)
        // B's outbound SA still seals; A's is gone.
        #expect(peer.sealOnly(Array("to B".utf8), to: b, port: 4000, from: EmulatedPeer.echoPort) != nil)
        #expect(peer.sealOnly(Array("to A".utf8), to: a, port: 4000, from: EmulatedPeer.echoPort) == nil)
    }

    @Test func anAddressHeldByOneDeviceIsRefusedToAnother() throws {
        let peer = try EmulatedPeer()
        defer { peer.stop() }
        let b = IPAddress(10, 77, 0, 2)
        #expect(peer.establish(device: 0xB, handset: b, selector: selector(b), template: 1, reused: false).isSuccess)
        #expect(peer.establish(device: 0xA, handset: b, selector: selector(b), template: 1, reused: false) == .failure(.refused("address held by another device")))
        #expect(peer.installedSAs == 2 && peer.installedSAs(device: 0xB) == 2)
        // Once B is forgotten the address is free again.
        peer.forget(device: 0xB)
        #expect(peer.establish(device: 0xA, handset: b, selector: selector(b), template: 1, reused: false).isSuccess)
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
