import Foundation
import EmulatorSupport
import Gateway
import Testing
import HandsetCore

/// The emulated opposite party keeps each device's SAs apart (issue 12 item 3).
@Suite struct EmulatedPeerTests {
    func selector(_ handset: IPAddress) -> TrafficSelector {
        TrafficSelector(local: handset, remote: IPAddress(127, 0, 0, 1), localPort: 0, remotePort: EmulatedPeer.echoPort)
    }

    /// Plays the handset: seals one dummy packet (next header 59, RFC 4303 §2.6) under the transfer's outbound
    /// half, as the handset does with a fresh pair, and sends it to the peer.
    func useOutboundHalf(of t: KDSATransfer, from handset: IPAddress, to peer: EmulatedPeer) throws {
        var table = SATable<2>()
        let p = SAParameters(spi: t.outboundSPI, direction: .outbound, algorithm: .aesGCM, keyLength: 32,
                             salt: t.outboundSalt, local: handset, selector: SelectorPattern(remote: t.peer, prefix: 32),
                             peer: t.peer)
        let slot = try t.outboundKey.withBytes { k in Result { () throws(SAError) in try table.install(p, key: k) } }.get()
        var wire = [UInt8](repeating: 0, count: 256)
        let n = try wire.withUnsafeMutableBytes { w throws(ESPError) in
            try table.seal(slot: slot, payload: UnsafeRawBufferPointer(start: nil, count: 0), nextHeader: 59, into: w)
        }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_addr.s_addr = inet_addr("127.0.0.1")
        to.sin_port = peer.espPort.bigEndian
        let sent = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            sendto(fd, wire, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        } }
        #expect(sent == n)
    }

    /// The peer learns its keys before the handset, which gets them by SMS: until the handset has used a pair, the
    /// peer seals nothing under it, so no reply is lost while the SMS is on its way.
    @Test func thePeersOutboundHalfWaitsUntilTheHandsetUsesThePair() throws {
        let peer = try EmulatedPeer()
        defer { peer.stop() }
        let a = IPAddress(10, 77, 0, 1)
        let t = try peer.establish(device: 0xA, handset: a, selector: selector(a), template: 1, reused: false).get()
        #expect(peer.installedSAs == 1)
        #expect(peer.sealOnly(Array("early".utf8), to: a, port: 4000, from: EmulatedPeer.echoPort) == nil)
        try useOutboundHalf(of: t, from: a, to: peer)
        let deadline = Date().addingTimeInterval(5)
        while peer.installedSAs < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(peer.installedSAs == 2 && peer.counters.dummies == 1)
        #expect(peer.sealOnly(Array("now".utf8), to: a, port: 4000, from: EmulatedPeer.echoPort) != nil)
    }

    @Test func forgettingOneDeviceLeavesTheOthersSAs() throws {
        let peer = try EmulatedPeer()
        defer { peer.stop() }
        let a = IPAddress(10, 77, 0, 1), b = IPAddress(10, 77, 0, 2)
        let ta = try peer.establish(device: 0xA, handset: a, selector: selector(a), template: 1, reused: false).get()
        let tb = try peer.establish(device: 0xB, handset: b, selector: selector(b), template: 1, reused: false).get()
        try useOutboundHalf(of: ta, from: a, to: peer)
        try useOutboundHalf(of: tb, from: b, to: peer)
        let deadline = Date().addingTimeInterval(5)
        while peer.installedSAs < 4 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
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
        #expect(peer.installedSAs == 1 && peer.installedSAs(device: 0xB) == 2)
        // Once B is forgotten the address is free again.
        peer.forget(device: 0xB)
        #expect(peer.establish(device: 0xA, handset: b, selector: selector(b), template: 1, reused: false).isSuccess)
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
