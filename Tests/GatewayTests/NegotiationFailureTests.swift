import Foundation
import Gateway
import HandsetCore
import Testing

/// A failed negotiation answers the key-request with the failure's own KD status (docs/key-delegation.md §4),
/// counted by kind; nothing is installed on the handset.
@Suite struct NegotiationFailureTests {
    /// Opens a downlink the way the handset would and returns the error status it carries, if it is an error.
    static func errorStatus(_ d: Downlink, _ w: World) throws -> KDStatus? {
        let dev = try #require(try w.registry.device(id: w.deviceID))
        var k = DeliveryKeys()
        _ = dev.key.withUnsafeBytes { k.derive(deviceKey: $0, deviceID: w.deviceID, epoch: UInt16(dev.epoch)) }
        let h = try #require(d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) })
        var plain = [UInt8](repeating: 0, count: d.bytes.count)
        let n = try #require(d.bytes.withUnsafeBytes { w in plain.withUnsafeMutableBytes { k.open(w, header: h, direction: .down, into: $0) } })
        return plain[0..<n].withUnsafeBytes { p -> KDStatus? in
            guard case .error(let e)? = KDBody.decode(h.type, p) else { return nil }
            return e.status
        }
    }

    @Test(arguments: [
        (NegotiationFailure.noProposalChosen, KDStatus.noProposalChosen),
        (.authenticationFailed, .authenticationFailed),
        (.timeout, .peerTimeout),
        (.unreachable, .peerUnreachable),
        (.refused("policy"), .denied),
    ])
    func eachFailureHasItsStatusAndCounter(failure: NegotiationFailure, status: KDStatus) throws {
        let counter: KeyPath<GatewayCounters, Int> = switch failure {
        case .noProposalChosen: \.noProposalChosen
        case .authenticationFailed: \.authenticationFailed
        case .timeout: \.negotiationTimeouts
        case .unreachable: \.peerUnreachable
        case .refused: \.negotiationRefused
        }
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        w.peer.failWith = failure
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 5000, remotePort: 7), now: 1)
        let answers = w.gateway.handleUplink(c.drain()[0])
        #expect(answers.count == 1 && answers[0].type == .error)
        #expect(try Self.errorStatus(answers[0], w) == status)
        #expect(w.gateway.counters[keyPath: counter] == 1 && w.gateway.counters.saDelivered == 0)
        // The handset takes the answer, counts it, and installs nothing.
        #expect(c.deliver(answers, plane: &plane) == [.accepted(.error)])
        #expect(plane.sas.count == 0 && c.counters.errorsFromGateway == 1)
    }

    /// A transfer the peer negotiated on its own goes out as request 0, and is counted apart.
    @Test func aPeerMadeTransferIsPushedAsRequestZero() throws {
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        guard case .success(var t) = w.peer.establish(device: w.deviceID, handset: c.localAddress,
                                                       selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                                                 localPort: 0, remotePort: 7),
                                                       template: 1, reused: false) else { Issue.record("peer failed"); return }
        t.requestID = 99  // whatever the engine left there, a push is request 0
        let out = w.gateway.push(device: w.deviceID, transfer: t)
        #expect(out.count == 1 && out[0].type == .saTransfer && w.gateway.counters.saPushed == 1)
        #expect(c.deliver(out, plane: &plane) == [.accepted(.saTransfer)])
        #expect(plane.sas.count == 2)
    }

    /// Registry v4: the IKE identity and PSK survive a reopen, and the PSK is not stored in clear.
    @Test func ikeCredentialsAreStoredWrapped() throws {
        let w = try World()
        let psk = Data("a-very-recognisable-psk".utf8)
        _ = try w.registry.update(device: w.deviceID) { d in
            d.ikeIdentity = "dev1@handset.invalid"
            d.ikePSK = psk
        }
        let again = try DeviceRegistry(path: w.sqlite.path, kek: try KeyEncryptionKey.load(path: w.dir.appendingPathComponent("registry.kek").path))
        let d = try #require(try again.device(id: w.deviceID))
        #expect(d.ikeIdentity == "dev1@handset.invalid" && d.ikePSK == psk)
        let file = try Data(contentsOf: URL(fileURLWithPath: w.sqlite.path))
        #expect(file.range(of: psk) == nil)
    }
}
