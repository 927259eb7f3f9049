import Testing
@testable import HandsetCore

/// The data plane's one-entry flow caches must never outlive a change to the SA table or the SPD.
@Suite struct FlowCacheTests {
    /// Seals `payload` for the handset's usual flow and returns the SPI on the wire (nil when no packet came out).
    func sealedSPI(_ pair: inout Pair, _ result: inout SealResult) -> UInt32? {
        var wire = [UInt8](repeating: 0, count: 512)
        let sel = pair.fromHandset
        result = [UInt8](repeating: 3, count: 20).withUnsafeBytes { p in
            wire.withUnsafeMutableBytes { pair.handset.seal(p, selector: sel, into: $0) }
        }
        guard case .packet = result else { return nil }
        return UInt32(wire[0]) << 24 | UInt32(wire[1]) << 16 | UInt32(wire[2]) << 8 | UInt32(wire[3])
    }

    func outbound(_ spi: UInt32, _ pair: borrowing Pair, lifetime: SALifetime = SALifetime()) -> SAParameters {
        SAParameters(spi: spi, direction: .outbound, algorithm: .aesGCM, keyLength: 16, salt: 1, local: pair.handsetIP,
                     selector: SelectorPattern(remote: pair.peerIP, prefix: 32, proto: IPProto.udp), peer: pair.peerIP,
                     lifetime: lifetime)
    }

    @Test func installAndDeleteMoveTheCachedFlow() throws {
        var pair = Pair()
        var r = SealResult.discard
        #expect(sealedSPI(&pair, &r) == 0x1001)
        let key = [UInt8](repeating: 9, count: 16)
        let p = outbound(0x1002, pair)
        try key.withUnsafeBytes { _ = try pair.handset.sas.install(p, key: $0) }
        #expect(sealedSPI(&pair, &r) == 0x1002, "make-before-break: the newer SA takes over at once")
        try pair.handset.sas.delete(spi: 0x1002, direction: .outbound)
        #expect(sealedSPI(&pair, &r) == 0x1001)
        try pair.handset.sas.delete(spi: 0x1001, direction: .outbound)
        #expect(sealedSPI(&pair, &r) == nil)
        #expect(r == .needsKey(rule: 0, template: 1))
    }

    @Test func softExpiryDuringSealMovesTheFlowBack() throws {
        var pair = Pair()
        var r = SealResult.discard
        var lt = SALifetime()
        lt.softPackets = 2
        let key = [UInt8](repeating: 9, count: 16)
        let p = outbound(0x1002, pair, lifetime: lt)
        try key.withUnsafeBytes { _ = try pair.handset.sas.install(p, key: $0) }
        #expect(sealedSPI(&pair, &r) == 0x1002)
        #expect(sealedSPI(&pair, &r) == 0x1002)  // the second packet soft-expires it
        #expect(sealedSPI(&pair, &r) == 0x1001, "a soft-expired SA gives way to a live one")
    }

    @Test func spdChangeDropsTheCachedFlow() throws {
        var pair = Pair()
        var r = SealResult.discard
        #expect(sealedSPI(&pair, &r) == 0x1001)
        pair.handset.spd.removeAll()
        try pair.handset.spd.append(SPDRule(SelectorPattern(remote: pair.peerIP, prefix: 32), .discard))
        #expect(sealedSPI(&pair, &r) == nil)
        #expect(r == .discard)
    }

    @Test func replacingTheWholeTableDropsTheCachedFlow() throws {
        var pair = Pair()
        var r = SealResult.discard
        #expect(sealedSPI(&pair, &r) == 0x1001)  // cached: slot 0, table version 2
        // A new table with the same version after its two installs, but slot 0 now holds an inbound SA.
        var t = SATable<8>()
        var inbound = outbound(0x3001, pair)
        inbound.direction = .inbound
        let key = [UInt8](repeating: 9, count: 16)
        try key.withUnsafeBytes { _ = try t.install(inbound, key: $0) }
        let out = outbound(0x3002, pair)
        try key.withUnsafeBytes { _ = try t.install(out, key: $0) }
        #expect(t.version == pair.handset.sas.version)
        pair.handset.sas = t
        #expect(sealedSPI(&pair, &r) == 0x3002)
    }

    @Test func inboundPolicyChangeIsSeenAfterACachedAccept() throws {
        var pair = Pair()
        let sel = pair.fromHandset
        _ = try roundTrip([1, 2, 3], sel: sel, from: &pair.handset, to: &pair.peer)  // the peer caches the flow
        pair.peer.spd.removeAll()
        try pair.peer.spd.append(SPDRule(SelectorPattern(remote: pair.handsetIP, prefix: 32), .bypass))
        var wire = [UInt8](repeating: 0, count: 512), plain = [UInt8](repeating: 0, count: 512)
        let s = [UInt8](repeating: 4, count: 8).withUnsafeBytes { p in
            wire.withUnsafeMutableBytes { pair.handset.seal(p, selector: sel, into: $0) }
        }
        guard case .packet(let n, _, _) = s else { Issue.record("seal gave \(s)"); return }
        #expect(throws: ESPError.policyMismatch) { _ = try openBytes(Array(wire[0..<n]), &pair.peer, into: &plain) }
        #expect(pair.peer.counters.policyMismatch == 1)
    }
}
