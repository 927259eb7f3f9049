import Testing
@testable import HandsetCore

/// Two data planes with mirrored SAs, as the gateway would install them: the handset and its peer.
struct Pair: ~Copyable {
    var handset = DataPlane<8, 8>()
    var peer = DataPlane<8, 8>()
    let handsetIP: IPAddress
    let peerIP: IPAddress

    init(mode: (IPAddress, IPAddress) -> ESPMode = { _, _ in .transport }, v6: Bool = false,
         algorithm: ESPAlgorithm = .aesGCM, keyLength: Int = 16, lifetime: SALifetime = SALifetime()) {
        handsetIP = v6 ? IPAddress(v6High: 0x2001_0db8_0000_0001, low: 2) : IPAddress(10, 0, 0, 2)
        peerIP = v6 ? IPAddress(v6High: 0x2001_0db8_0000_0002, low: 1) : IPAddress(192, 0, 2, 1)
        let k1 = [UInt8](repeating: 0x11, count: keyLength), k2 = [UInt8](repeating: 0x22, count: keyLength)
        func params(_ spi: UInt32, _ dir: SADirection, local: IPAddress, remote: IPAddress) -> SAParameters {
            SAParameters(spi: spi, direction: dir, algorithm: algorithm, keyLength: keyLength, salt: 0xA1B2_C3D4,
                         mode: mode(local, remote), local: local,
                         selector: SelectorPattern(remote: remote, prefix: remote.bitWidth, proto: IPProto.udp),
                         peer: remote, lifetime: lifetime)
        }
        try! handset.spd.append(SPDRule(SelectorPattern(remote: peerIP, prefix: peerIP.bitWidth), .protect(template: 1)))
        try! peer.spd.append(SPDRule(SelectorPattern(remote: handsetIP, prefix: handsetIP.bitWidth), .protect(template: 1)))
        _ = k1.withUnsafeBytes { try! handset.sas.install(params(0x1001, .outbound, local: handsetIP, remote: peerIP), key: $0) }
        _ = k2.withUnsafeBytes { try! handset.sas.install(params(0x2001, .inbound, local: handsetIP, remote: peerIP), key: $0) }
        _ = k2.withUnsafeBytes { try! peer.sas.install(params(0x2001, .outbound, local: peerIP, remote: handsetIP), key: $0) }
        _ = k1.withUnsafeBytes { try! peer.sas.install(params(0x1001, .inbound, local: peerIP, remote: handsetIP), key: $0) }
    }

    var fromHandset: TrafficSelector { TrafficSelector(local: handsetIP, remote: peerIP, localPort: 5000, remotePort: 7) }
}

/// Seals on `from`, opens on `to`; returns the received selector and payload.
func roundTrip(_ payload: [UInt8], sel: TrafficSelector, from: inout DataPlane<8, 8>, to: inout DataPlane<8, 8>)
    throws -> (TrafficSelector, [UInt8])
{
    var wire = [UInt8](repeating: 0, count: 2048), plain = [UInt8](repeating: 0, count: 2048)
    let r = payload.withUnsafeBytes { p in wire.withUnsafeMutableBytes { from.seal(p, selector: sel, into: $0) } }
    guard case .packet(let n, _, let port) = r else { Issue.record("seal gave \(r)"); throw ESPError.malformed }
    #expect(port == 4500)
    let o = try openBytes(Array(wire[0..<n]), &to, into: &plain)
    guard case .datagram(let s, let range) = o else { Issue.record("open gave \(o)"); throw ESPError.malformed }
    return (s, Array(plain[range]))
}

func openBytes(_ wire: [UInt8], _ dp: inout DataPlane<8, 8>, into out: inout [UInt8]) throws -> OpenResult {
    try wire.withUnsafeBytes { w in try out.withUnsafeMutableBytes { o in try dp.open(w, into: o) } }
}

@Suite struct DataPlaneTests {
    @Test(arguments: [false, true], [false, true])
    func roundTripsBothWays(tunnel: Bool, v6: Bool) throws {
        var pair = Pair(mode: tunnel ? { .tunnel(local: $0, remote: $1) } : { _, _ in .transport }, v6: v6)
        let sel = pair.fromHandset
        let (got, data) = try roundTrip(Array("balance?".utf8), sel: sel, from: &pair.handset, to: &pair.peer)
        #expect(data == Array("balance?".utf8))
        #expect(got.remote == pair.handsetIP && got.remotePort == 5000 && got.localPort == 7)
        var back = got; back.local = pair.peerIP
        let (got2, data2) = try roundTrip(Array("42.00".utf8), sel: back, from: &pair.peer, to: &pair.handset)
        #expect(data2 == Array("42.00".utf8))
        #expect(got2.localPort == 5000 && got2.remotePort == 7 && got2.remote == pair.peerIP)
    }

    @Test func chachaRoundTrip() throws {
        var pair = Pair(algorithm: .chacha20Poly1305, keyLength: 32)
        let (_, data) = try roundTrip([1, 2, 3], sel: pair.fromHandset, from: &pair.handset, to: &pair.peer)
        #expect(data == [1, 2, 3])
    }

    @Test func protectWithoutSAAsksForKeyNeverClear() {
        var dp = DataPlane<4, 4>(defaultAction: .bypass)
        let remote = IPAddress(198, 51, 100, 7)
        try! dp.spd.append(SPDRule(SelectorPattern(remote: remote, prefix: 32, proto: IPProto.udp), .protect(template: 9)))
        var out = [UInt8](repeating: 0, count: 256)
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: remote, localPort: 1, remotePort: 2)
        let r = [UInt8](repeating: 7, count: 10).withUnsafeBytes { p in out.withUnsafeMutableBytes { dp.seal(p, selector: sel, into: $0) } }
        #expect(r == .needsKey(rule: 0, template: 9))
        #expect(out.allSatisfy { $0 == 0 }, "nothing written for a flow with no SA")
        var other = sel; other.remote = IPAddress(198, 51, 100, 8)
        let r2 = [UInt8](repeating: 7, count: 10).withUnsafeBytes { p in out.withUnsafeMutableBytes { dp.seal(p, selector: other, into: $0) } }
        #expect(r2 == .bypass)
        #expect(dp.counters.needsKey == 1)
    }

    @Test func secretRuleIsNeverSentOnTheDataPlane() {
        var pair = Pair()
        pair.handset.spd.removeAll()
        try! pair.handset.spd.append(SPDRule(SelectorPattern(remote: pair.peerIP, prefix: 32), .protect(template: 1), secret: true))
        var out = [UInt8](repeating: 0, count: 256)
        let r = [UInt8](repeating: 1, count: 4).withUnsafeBytes { p in
            out.withUnsafeMutableBytes { pair.handset.seal(p, selector: pair.fromHandset, into: $0) }
        }
        #expect(r == .discard)
    }

    @Test func keepaliveAndNonESPAreDemultiplexed() throws {
        var pair = Pair()
        var out = [UInt8](repeating: 0, count: 64)
        let k = try openBytes([0xFF], &pair.handset, into: &out)
        #expect(k == .keepalive)
        let ike = try openBytes([0, 0, 0, 0, 1, 2, 3], &pair.handset, into: &out)
        #expect(ike == .nonESP)
        #expect(pair.handset.counters.keepalives == 1 && pair.handset.counters.nonESP == 1)
    }

    @Test func innerSelectorOutsideTheSAIsRefusedAndWindowStays() throws {
        // The peer's SA covers only port 7 at the handset; a packet for port 8 must be refused after decryption.
        var pair = Pair(mode: { .tunnel(local: $0, remote: $1) })
        pair.peer.spd.removeAll()
        try! pair.peer.spd.append(SPDRule(SelectorPattern(remote: pair.handsetIP, prefix: 32), .protect(template: 1)))
        var narrow = pair.peer.sas.snapshot(spi: 0x1001, direction: .inbound)!.params
        narrow.selector.remotePorts = PortRange(5001)
        try [UInt8](repeating: 0x11, count: 16).withUnsafeBytes { k in
            try pair.peer.sas.replace(spi: 0x1001, direction: .inbound, with: narrow, key: k)
        }
        let before = pair.peer.sas.snapshot(spi: 0x1001, direction: .inbound)!
        #expect(throws: ESPError.policyMismatch) {
            _ = try roundTrip([9], sel: pair.fromHandset, from: &pair.handset, to: &pair.peer)
        }
        let after = pair.peer.sas.snapshot(spi: 0x1001, direction: .inbound)!
        #expect(after.sameProtocolState(as: before))
        #expect(after.counters.policyMismatches == 1)
    }

    @Test func hardPacketLimitRemovesSAAndRaisesEvents() throws {
        var lt = SALifetime(); lt.softPackets = 2; lt.hardPackets = 3
        var pair = Pair(lifetime: lt)
        for _ in 0..<3 { _ = try roundTrip([1], sel: pair.fromHandset, from: &pair.handset, to: &pair.peer) }
        #expect(pair.handset.sas.events.pop() == .softExpired(spi: 0x1001, direction: .outbound))
        var out = [UInt8](repeating: 0, count: 256)
        let r = [UInt8]([1]).withUnsafeBytes { p in out.withUnsafeMutableBytes { pair.handset.seal(p, selector: pair.fromHandset, into: $0) } }
        #expect(r == .failed(.expired))
        #expect(pair.handset.sas.events.pop() == .hardExpired(spi: 0x1001, direction: .outbound))
        #expect(pair.handset.sas.snapshot(spi: 0x1001, direction: .outbound) == nil)
        let r2 = [UInt8]([1]).withUnsafeBytes { p in out.withUnsafeMutableBytes { pair.handset.seal(p, selector: pair.fromHandset, into: $0) } }
        #expect(r2 == .needsKey(rule: 0, template: 1))
    }

    @Test func timeLifetimesFireOnTick() {
        var pair = Pair(lifetime: SALifetime(softSeconds: 10, hardSeconds: 20))
        pair.handset.sas.tick(now: 9)
        #expect(pair.handset.sas.events.count == 0)
        pair.handset.sas.tick(now: 10)
        #expect(pair.handset.sas.events.count == 2)  // both SAs soft-expire once
        pair.handset.sas.tick(now: 11)
        #expect(pair.handset.sas.events.count == 2)
        pair.handset.sas.tick(now: 20)
        #expect(pair.handset.sas.count == 0)
    }
}
