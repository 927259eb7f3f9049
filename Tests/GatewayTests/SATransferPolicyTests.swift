import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// docs/key-delegation.md §6: a transfer covers at most the flow its key request named, a push at most one
/// protect rule, pushes from one peer hold at most `pushedPairsPerPeer` pairs, and IPv6 peers are refused.
/// Each refusal is counted, answered with a failing sa-ack, and installs nothing.
@Suite struct SATransferPolicyTests {
    typealias Client = KeyDelegationClient<FlashStore>

    func loggedIn(_ w: World, plane: inout HandsetPlane) throws -> Client {
        var c = try w.handset()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        #expect(c.phase == .ready)
        return c
    }

    /// The status of the one sa-ack in the handset's outbox, opened with the handset's own current keys.
    func ackStatus(_ c: inout Client) throws -> KDStatus? {
        let up = c.drain()
        #expect(up.count == 1)
        var keys = DeliveryKeys()
        let derived = c.state.currentKey.withBytes { keys.derive(deviceKey: $0, deviceID: c.state.deviceID, epoch: c.state.epoch) }
        #expect(derived)
        return try up[0].withUnsafeBytes { wire -> KDStatus? in
            let h = try #require(KDHeader.read(wire, direction: .up))
            var plain = [UInt8](repeating: 0, count: 512)
            let n = try #require(plain.withUnsafeMutableBytes { keys.open(wire, header: h, direction: .up, into: $0) })
            return plain[0..<n].withUnsafeBytes { p -> KDStatus? in
                guard case .saAck(let a)? = KDBody.decode(h.type, p) else { return nil }
                return a.status
            }
        }
    }

    func push(_ w: World, _ c: borrowing Client, remotePort: UInt16) -> [Downlink] {
        w.gateway.push(device: w.deviceID, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                                     localPort: 0, remotePort: remotePort))
    }

    func outboundSPI(_ plane: borrowing HandsetPlane, _ c: borrowing Client, _ w: World, remotePort: UInt16) -> UInt32? {
        let sel = TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 1, remotePort: remotePort)
        return plane.sas.outboundSlot(for: sel).flatMap { plane.sas.snapshot(slot: $0)?.params.spi }
    }

    @Test func pushWithPrefixZeroIsRefusedUnlessARuleIsThatWide() throws {
        let w = try World()
        var plane = handsetPlane()  // protects 192.0.2.0/24 only
        var c = try loggedIn(w, plane: &plane)
        w.peer.reshape = { $0.prefix = 0 }
        #expect(c.deliver(push(w, c, remotePort: 7), plane: &plane) == [.accepted(.saTransfer)])
        #expect(plane.sas.count == 0 && c.counters.sasInstalled == 0)
        #expect(c.counters.saOutsidePolicy == 1)
        #expect(try ackStatus(&c) == .denied)
        #expect(c.installed.isEmpty)

        var wide = handsetPlane()
        try wide.spd.append(SPDRule(SelectorPattern(remote: .anyV4, prefix: 0), .protect(template: 1)))
        #expect(c.deliver(push(w, c, remotePort: 7), plane: &wide) == [.accepted(.saTransfer)])
        #expect(wide.sas.count == 2)
        #expect(try ackStatus(&c) == .ok)
    }

    @Test func secretAndBypassRulesDoNotAdmitAPush() throws {
        let w = try World()
        var plane = HandsetPlane()
        try plane.spd.append(SPDRule(SelectorPattern(remote: w.peer.address, prefix: 32), .protect(template: 1), secret: true))
        try plane.spd.append(SPDRule(SelectorPattern(remote: w.peer.address, prefix: 32), .bypass))
        var c = try loggedIn(w, plane: &plane)
        _ = c.deliver(push(w, c, remotePort: 7), plane: &plane)
        #expect(plane.sas.count == 0 && c.counters.saOutsidePolicy == 1)
        #expect(try ackStatus(&c) == .denied)
    }

    @Test func answerWiderThanTheRequestIsRefused() throws {
        let w = try World()
        var plane = handsetPlane()
        var c = try loggedIn(w, plane: &plane)
        let sel = TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 5000, remotePort: 7)
        w.peer.reshape = { $0.localPort = 0 }  // every local port, where the handset asked for 5000
        c.requestKey(template: 1, selector: sel, now: 1)
        let request = c.drain()
        #expect(c.deliver(w.gateway.handleUplink(request[0]), plane: &plane) == [.accepted(.saTransfer)])
        #expect(plane.sas.count == 0 && c.counters.saOutsidePolicy == 1)
        #expect(try ackStatus(&c) == .denied)

        // Exactly the flow asked for is installed.
        w.peer.reshape = nil
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 5001, remotePort: 7), now: 2)
        exchange(&c, w.gateway, plane: &plane)
        #expect(plane.sas.count == 2 && c.counters.saOutsidePolicy == 1)
    }

    @Test func answerForAnotherHostIsRefusedEvenInsideARule() throws {
        let w = try World()
        var plane = handsetPlane()  // 192.0.2.0/24: the other host is inside the rule, not the request
        var c = try loggedIn(w, plane: &plane)
        w.peer.reshape = { $0.peer = IPAddress(192, 0, 2, 99) }
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 5000, remotePort: 7), now: 1)
        exchange(&c, w.gateway, plane: &plane)
        #expect(plane.sas.count == 0 && c.counters.saOutsidePolicy == 1)
    }

    /// Issue 15: ESP goes to the server's public address (the peer); the flow is to a service behind it. With the
    /// remote address in the transfer the answer is the flow asked for, and the SA seals to the service via the peer.
    @Test func aTunnelToAServiceBehindThePeerIsTheFlowAskedFor() throws {
        let w = try World()
        var plane = handsetPlane()
        var c = try loggedIn(w, plane: &plane)
        let service = IPAddress(192, 0, 2, 50)
        w.peer.reshape = { $0.tunnel = true; $0.remote = service }
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: service, localPort: 0, remotePort: 7), now: 1)
        exchange(&c, w.gateway, plane: &plane)
        #expect(plane.sas.count == 2 && c.counters.saOutsidePolicy == 0)
        let found = plane.sas.outboundSlot(for: TrafficSelector(local: c.localAddress, remote: service, localPort: 1, remotePort: 7))
        let slot = try #require(found)
        let params = plane.sas.snapshot(slot: slot)?.params
        let p = try #require(params)
        #expect(p.peer == w.peer.address && p.mode == .tunnel(local: c.localAddress, remote: w.peer.address))
    }

    @Test func pushesFromOnePeerAreCapped() throws {
        let w = try World()
        var plane = handsetPlane()
        var c = try loggedIn(w, plane: &plane)
        let cap = Client.pushedPairsPerPeer
        for port in 0..<cap {
            _ = c.deliver(push(w, c, remotePort: UInt16(7 + port)), plane: &plane)
            #expect(try ackStatus(&c) == .ok)
        }
        #expect(plane.sas.count == 2 * cap)
        // One more flow: refused, counted, nothing installed.
        _ = c.deliver(push(w, c, remotePort: 100), plane: &plane)
        #expect(try ackStatus(&c) == .busy)
        #expect(c.counters.saPeerLimit == 1 && plane.sas.count == 2 * cap)
        #expect(plane.sas.outboundSlot(for: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 1, remotePort: 100)) == nil)
        // The same flow pushed again supersedes its older pair: still at the cap.
        let oldest = outboundSPI(plane, c, w, remotePort: 7)
        let oldSPI = try #require(oldest)
        _ = c.deliver(push(w, c, remotePort: 7), plane: &plane)
        #expect(try ackStatus(&c) == .ok)
        #expect(plane.sas.count == 2 * cap && plane.sas.slot(spi: oldSPI, direction: .outbound) == nil)
        // What the handset asks for itself is not a push and is not capped.
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 5000, remotePort: 200), now: 1)
        exchange(&c, w.gateway, plane: &plane)
        #expect(plane.sas.count == 2 * cap + 2 && c.counters.saPeerLimit == 1)
        // Once a pushed pair is deleted its place is free again.
        let found = outboundSPI(plane, c, w, remotePort: 8)
        let spi = try #require(found)
        _ = c.deliver(w.gateway.deleteSA(device: w.deviceID, outboundSPI: spi, inboundSPI: spi + 1), plane: &plane)  // TestPeer: inbound = outbound + 1
        #expect(plane.sas.count == 2 * cap)
        _ = c.deliver(push(w, c, remotePort: 100), plane: &plane)
        #expect(try ackStatus(&c) == .ok)
    }

    @Test func ipv6PeerIsRefused() throws {
        let w = try World()
        var plane = handsetPlane()
        try plane.spd.append(SPDRule(SelectorPattern(remote: IPAddress(v6High: 0x2001_0db8_0000_0000, low: 0), prefix: 32),
                                     .protect(template: 1)))
        var c = try loggedIn(w, plane: &plane)
        w.peer.reshape = { $0.peer = IPAddress(v6High: 0x2001_0db8_0000_0000, low: 0xC000_0201); $0.prefix = 128 }
        #expect(c.deliver(push(w, c, remotePort: 7), plane: &plane) == [.accepted(.saTransfer)])
        #expect(plane.sas.count == 0 && c.counters.saIPv6Refused == 1)
        #expect(try ackStatus(&c) == .denied)
    }

    @Test func decryptedKeyMaterialIsWiped() {
        var b = FixedBytes<64>()
        b.fill { o in for i in 0..<o.count { o[i] = 0xA5 }; return 40 }
        b.wipe()
        #expect(b.count == 0)
        #expect(withUnsafeBytes(of: b.storage) { $0.allSatisfy { $0 == 0 } })

        let key = [UInt8](repeating: 0x5A, count: 32).withUnsafeBytes { KeyBytes($0) }
        var ack = KDBody.loginAck(KDLoginAck(hello: 1, newEpoch: 2, newKey: key, gatewayTime: 0))
        ack.wipeKeys()
        guard case .loginAck(let m) = ack else { Issue.record("not a login-ack"); return }
        #expect(m.newKey.isZero && m.hello == 1)
        var transfer = KDBody.saTransfer(KDSATransfer(requestID: 1, outboundSPI: 300, outboundKey: key, outboundSalt: 1,
                                                      inboundSPI: 301, inboundKey: key, inboundSalt: 2,
                                                      peer: IPAddress(192, 0, 2, 1), prefix: 32, proto: 17,
                                                      localPort: 0, remotePort: 7, softSeconds: 0, hardSeconds: 0))
        transfer.wipeKeys()
        guard case .saTransfer(let t) = transfer else { Issue.record("not a transfer"); return }
        #expect(t.outboundKey.isZero && t.inboundKey.isZero && t.outboundSPI == 300)
    }
}
