import CHandsetShim
import Testing
@testable import HandsetCore

/// A sender table and a receiver table holding the two ends of one SA.
struct ESPLink: ~Copyable {
    static let spi: UInt32 = 0x0000_5EC5
    var tx = SATable<4>()
    var rx = SATable<4>()
    var txSlot = 0, rxSlot = 0
    let params: SAParameters
    let key: [UInt8]

    init(_ algorithm: ESPAlgorithm = .aesGCM, keyLength: Int = 16, icv: Int = 16, esn: Bool = false,
         implicitIV: Bool = false, lifetime: SALifetime = SALifetime()) throws {
        key = (0..<keyLength).map { UInt8($0 &* 7 &+ 1) }
        params = SAParameters(spi: Self.spi, direction: .outbound, algorithm: algorithm, keyLength: keyLength,
                              icvLength: icv, salt: 0x5A17_5A17, local: IPAddress(10, 0, 0, 2),
                              selector: SelectorPattern(remote: IPAddress(192, 0, 2, 1), prefix: 32),
                              peer: IPAddress(192, 0, 2, 1), esn: esn, implicitIV: implicitIV, lifetime: lifetime)
        var inbound = params
        inbound.direction = .inbound
        txSlot = try key.withUnsafeBytes { k in try tx.install(params, key: k) }
        rxSlot = try key.withUnsafeBytes { k in try rx.install(inbound, key: k) }
    }

    mutating func seal(_ payload: [UInt8], nextHeader: UInt8 = IPProto.udp) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ESPFormat.wireLength(params, payload: payload.count))
        let n = try payload.withUnsafeBytes { p in
            try out.withUnsafeMutableBytes { o in try tx.seal(slot: txSlot, payload: p, nextHeader: nextHeader, into: o) }
        }
        return Array(out[0..<n])
    }

    mutating func open(_ wire: [UInt8]) throws -> (nextHeader: UInt8, payload: [UInt8]) {
        var out = [UInt8](repeating: 0, count: max(wire.count, 1))
        let r = try wire.withUnsafeBytes { w in
            try out.withUnsafeMutableBytes { o in try rx.open(w, into: o) }
        }
        return (r.nextHeader, Array(out[0..<r.length]))
    }

    var rxSnapshot: SASnapshot? { rx.snapshot(slot: rxSlot) }
    var txSnapshot: SASnapshot? { tx.snapshot(slot: txSlot) }

    /// Opens `wire`, expects `error`, and checks the receiving SA kept its protocol state and bumped only `counter`.
    mutating func expectRejected(_ wire: [UInt8], _ error: ESPError, counter: WritableKeyPath<SACounters, UInt64>?,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
        guard let before = rxSnapshot else { Issue.record("no SA", sourceLocation: sourceLocation); return }
        do {
            _ = try open(wire)
            Issue.record("accepted a packet that should fail with \(error)", sourceLocation: sourceLocation)
        } catch let got {
            #expect(got as? ESPError == error, sourceLocation: sourceLocation)
        }
        guard let after = rxSnapshot else { Issue.record("SA vanished", sourceLocation: sourceLocation); return }
        #expect(after.sameProtocolState(as: before), sourceLocation: sourceLocation)
        var expected = before.counters
        if let counter { expected[keyPath: counter] += 1 }
        #expect(after.counters == expected, sourceLocation: sourceLocation)
    }
}

/// Seals with the shim directly, so a test can put any bytes (wrong padding) under a valid ICV.
func sealRaw(_ link: borrowing ESPLink, seq: UInt32, plaintext: [UInt8]) -> [UInt8] {
    let p = link.params
    let ctx = UnsafeMutableRawPointer.allocate(byteCount: hs_aead_ctx_size(), alignment: max(16, hs_aead_ctx_align()))
    ctx.initializeMemory(as: UInt8.self, repeating: 0, count: hs_aead_ctx_size())
    defer { hs_aead_wipe(ctx); ctx.deallocate() }
    #expect(hs_aead_setkey(ctx, p.algorithm == .aesGCM ? Int32(HS_AEAD_AES_GCM) : Int32(HS_AEAD_CHACHA20_POLY1305),
                           link.key, link.key.count) == Int32(HS_OK))
    let be32 = { (v: UInt32) in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
    let iv = [0, 0, 0, 0] + be32(seq)
    let nonce = be32(p.salt) + iv
    let aad = be32(p.spi) + be32(seq)
    var ct = [UInt8](repeating: 0, count: plaintext.count)
    var tag = [UInt8](repeating: 0, count: p.icvLength)
    #expect(hs_aead_seal(ctx, nonce, aad, aad.count, plaintext, &ct, plaintext.count, &tag, tag.count) == Int32(HS_OK))
    return be32(p.spi) + be32(seq) + iv + ct + tag
}

@Suite struct ESPRejectionTests {
    static let suites: [(ESPAlgorithm, Int, Int)] = [(.aesGCM, 16, 16), (.aesGCM, 32, 12), (.aesGCM, 16, 8), (.chacha20Poly1305, 32, 16)]

    @Test(arguments: suites)
    func tamperedICVEveryByte(_ s: (ESPAlgorithm, Int, Int)) throws {
        var link = try ESPLink(s.0, keyLength: s.1, icv: s.2)
        let wire = try link.seal(Array("icv".utf8))
        for i in (wire.count - s.2)..<wire.count {
            var bad = wire
            bad[i] ^= 0x80
            link.expectRejected(bad, .authenticationFailed, counter: \.icvFailures)
        }
        #expect(try link.open(wire).payload == Array("icv".utf8))  // the genuine packet still gets in
    }

    @Test(arguments: suites)
    func tamperedCiphertextEveryByte(_ s: (ESPAlgorithm, Int, Int)) throws {
        var link = try ESPLink(s.0, keyLength: s.1, icv: s.2)
        let wire = try link.seal([UInt8](repeating: 0xAB, count: 21))
        for i in 16..<(wire.count - s.2) {
            var bad = wire
            bad[i] ^= 0x01
            link.expectRejected(bad, .authenticationFailed, counter: \.icvFailures)
        }
        #expect(link.rxSnapshot?.counters.icvFailures == UInt64(wire.count - s.2 - 16))
    }

    @Test func tamperedHeader() throws {
        var link = try ESPLink()
        _ = try link.seal([1])
        let wire = try link.seal([2, 3])  // seq 2
        var seq = wire; seq[7] = 3          // still fresh, but not what was authenticated
        link.expectRejected(seq, .authenticationFailed, counter: \.icvFailures)
        var high = wire; high[4] = 0x80     // seq far right of the window: fresh, still fails the ICV
        link.expectRejected(high, .authenticationFailed, counter: \.icvFailures)
        var iv = wire; iv[15] ^= 0x10
        link.expectRejected(iv, .authenticationFailed, counter: \.icvFailures)
        var spi = wire; spi[3] ^= 0x01
        link.expectRejected(spi, .unknownSPI, counter: nil)
        // The same flipped SPI, now pointing at another SA with the same key: it must fail there, not be accepted.
        var other = link.params
        other.spi ^= 0x01
        other.direction = .inbound
        let otherSlot = try link.key.withUnsafeBytes { k in try link.rx.install(other, key: k) }
        let before = link.rx.snapshot(slot: otherSlot)!
        #expect(throws: ESPError.authenticationFailed) { try link.open(spi) }
        #expect(link.rx.snapshot(slot: otherSlot)!.sameProtocolState(as: before))
        #expect(try link.open(wire).payload == [2, 3])
    }

    @Test func replayedPacket() throws {
        var link = try ESPLink(.chacha20Poly1305, keyLength: 32)
        let wire = try link.seal([9, 9, 9])
        #expect(try link.open(wire).payload == [9, 9, 9])
        link.expectRejected(wire, .replayed, counter: \.replays)
        link.expectRejected(wire, .replayed, counter: \.replays)
        #expect(link.rxSnapshot?.counters.packets == 1)
    }

    @Test func leftOfWindow() throws {
        var link = try ESPLink()
        let size = SAReplayWindow.size
        link.tx.primeSequence(slot: link.txSlot, next: 1000 - size)
        let tooOld = try link.seal([1])                          // seq 1000 - size
        link.tx.primeSequence(slot: link.txSlot, next: 1000 - size + 1)
        let edge = try link.seal([2])                            // seq 1000 - size + 1: oldest still inside
        link.tx.primeSequence(slot: link.txSlot, next: 1000)
        _ = try link.open(try link.seal([3]))
        link.expectRejected(tooOld, .tooOld, counter: \.replays)
        #expect(try link.open(edge).payload == [2])
        // Sequence number 0 is never valid (RFC 4303 §3.3.3), authentic or not.
        var zero = edge
        for i in 4..<8 { zero[i] = 0 }
        link.expectRejected(zero, .tooOld, counter: \.replays)
    }

    /// Only the low 32 bits travel: a packet from the previous 2^32 epoch is read in the current one, so it is
    /// either a replay (same low bits as a seen number) or fails the ICV (the high bits are in the AAD).
    @Test func esnPacketFromAnEarlierEpoch() throws {
        var link = try ESPLink(esn: true)
        link.tx.primeSequence(slot: link.txSlot, next: 0x0000_0001_0000_0010)
        let sameLow = try link.seal([1])
        link.tx.primeSequence(slot: link.txSlot, next: 0x0000_0001_0000_0020)
        let higherLow = try link.seal([1])
        link.tx.primeSequence(slot: link.txSlot, next: 0x0000_0002_0000_0010)
        link.rx.primeSequence(slot: link.rxSlot, next: 0x0000_0002_0000_000F)
        _ = try link.open(try link.seal([2]))
        link.expectRejected(sameLow, .replayed, counter: \.replays)
        link.expectRejected(higherLow, .authenticationFailed, counter: \.icvFailures)
    }

    @Test(arguments: [[1, 3] as [UInt8], [2, 1], [0, 0], [1, 2, 4], [1, 2, 3, 5, 6]])
    func badPadding(_ pad: [UInt8]) throws {
        var link = try ESPLink()
        let payload: [UInt8] = Array(repeating: 0x42, count: (4 - (pad.count + 2) % 4) % 4 + 4)
        let bad = sealRaw(link, seq: 1, plaintext: payload + pad + [UInt8(pad.count), IPProto.udp])
        link.expectRejected(bad, .badPadding, counter: \.paddingErrors)
        // Window untouched: seq 1 with correct padding is still accepted.
        let good = sealRaw(link, seq: 1, plaintext: payload + (1...UInt8(pad.count)).map { $0 } + [UInt8(pad.count), IPProto.udp])
        #expect(try link.open(good).payload == payload)
    }

    @Test func padLengthBeyondPayload() throws {
        var link = try ESPLink()
        link.expectRejected(sealRaw(link, seq: 1, plaintext: [1, 2, 250, 17]), .badPadding, counter: \.paddingErrors)
        link.expectRejected(sealRaw(link, seq: 1, plaintext: [0, 1, 3, 17]), .badPadding, counter: \.paddingErrors)
    }

    @Test(arguments: suites)
    func truncationAtEveryLength(_ s: (ESPAlgorithm, Int, Int)) throws {
        var link = try ESPLink(s.0, keyLength: s.1, icv: s.2)
        let wire = try link.seal(Array(0..<23))
        for n in 0..<wire.count {
            let plain = n - 16 - s.2
            let expected: ESPError = n < 16 + 4 + s.2 ? .truncated : (plain % 4 != 0 ? .malformed : .authenticationFailed)
            link.expectRejected(Array(wire[0..<n]), expected, counter: expected == .authenticationFailed ? \.icvFailures : nil)
        }
        #expect(try link.open(wire).payload == Array(0..<23))
    }

    @Test func truncationWithImplicitIV() throws {
        var link = try ESPLink(implicitIV: true)
        let wire = try link.seal([5, 6, 7])
        #expect(wire.count == 8 + 3 + 3 + 2 + 16)  // header, payload, pad, trailer, ICV
        for n in 0..<wire.count {
            let expected: ESPError = n < 8 + 4 + 16 ? .truncated : ((n - 24) % 4 != 0 ? .malformed : .authenticationFailed)
            link.expectRejected(Array(wire[0..<n]), expected, counter: expected == .authenticationFailed ? \.icvFailures : nil)
        }
        #expect(try link.open(wire).payload == [5, 6, 7])
    }

    @Test func unknownSPI() throws {
        var link = try ESPLink()
        var wire = try link.seal([1, 2])
        wire[0] = 0x7F
        link.expectRejected(wire, .unknownSPI, counter: nil)
        link.expectRejected([0, 0, 1, 0, 0, 0, 0, 1], .unknownSPI, counter: nil)
    }

    @Test func hardPacketLifetime() throws {
        var lt = SALifetime()
        lt.hardPackets = 2
        var link = try ESPLink(lifetime: lt)
        let wires = try (0..<2).map { _ in try link.seal([7]) }
        #expect(throws: ESPError.expired) { try link.seal([8]) }  // sender stops at the limit too
        #expect(link.tx.snapshot(spi: ESPLink.spi, direction: .outbound) == nil)
        for w in wires { #expect(try link.open(w).payload == [7]) }
        link.tx = SATable<4>()
        var fresh = link.params
        fresh.lifetime = SALifetime()
        link.txSlot = try link.key.withUnsafeBytes { k in try link.tx.install(fresh, key: k) }
        link.tx.primeSequence(slot: link.txSlot, next: 3)
        let third = try link.seal([9])
        #expect(throws: ESPError.expired) { try link.open(third) }
        #expect(link.rx.snapshot(spi: ESPLink.spi, direction: .inbound) == nil)
        #expect(link.rx.events.pop() == .hardExpired(spi: ESPLink.spi, direction: .inbound))
        #expect(throws: ESPError.unknownSPI) { try link.open(third) }  // gone for good
    }

    @Test func hardByteLifetime() throws {
        var lt = SALifetime()
        lt.hardBytes = 10
        var link = try ESPLink(lifetime: lt)
        var open = link.params
        open.lifetime = SALifetime()
        var sender = SATable<4>()
        let s = try link.key.withUnsafeBytes { k in try sender.install(open, key: k) }
        func seal(_ n: Int, _ t: inout SATable<4>) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 64)
            let len = try [UInt8](repeating: 1, count: n).withUnsafeBytes { p in
                try out.withUnsafeMutableBytes { o in try t.seal(slot: s, payload: p, nextHeader: 17, into: o) }
            }
            return Array(out[0..<len])
        }
        _ = try link.open(try seal(6, &sender))    // 6 of 10 bytes
        let before = link.rxSnapshot!
        let over = try seal(5, &sender)           // would make 11
        #expect(throws: ESPError.expired) { try link.open(over) }
        #expect(link.rxSnapshot == nil)
        #expect(before.counters.bytes == 6)
        #expect(link.rx.events.pop() == .hardExpired(spi: ESPLink.spi, direction: .inbound))
    }

    @Test func hardTimeLifetime() throws {
        var link = try ESPLink(lifetime: SALifetime(softSeconds: 50, hardSeconds: 100))
        let wire = try link.seal([1])
        link.rx.tick(now: 99)
        #expect(link.rxSnapshot?.softExpired == true)
        link.rx.tick(now: 100)
        #expect(link.rxSnapshot == nil)
        #expect(link.rx.count == 0)
        #expect(throws: ESPError.unknownSPI) { try link.open(wire) }
        #expect(link.rx.events.pop() == .softExpired(spi: ESPLink.spi, direction: .inbound))
        #expect(link.rx.events.pop() == .hardExpired(spi: ESPLink.spi, direction: .inbound))
    }

    @Test func sequenceExhaustionWithoutESN() throws {
        var link = try ESPLink()
        link.tx.primeSequence(slot: link.txSlot, next: UInt64(UInt32.max))
        let last = try link.seal([1])                           // 2^32 - 1 may be sent
        #expect(Array(last[4..<8]) == [0xFF, 0xFF, 0xFF, 0xFF])
        let before = link.txSnapshot!
        #expect(throws: ESPError.sequenceExhausted) { try link.seal([2]) }
        #expect(link.txSnapshot!.sameProtocolState(as: before))  // never cycles to 0
        #expect(link.tx.events.pop() == .sequenceExhausted(spi: ESPLink.spi))
        // Further attempts are refused without raising the event again.
        for _ in 0..<40 { #expect(throws: ESPError.sequenceExhausted) { try link.seal([3]) } }
        #expect(link.tx.events.pop() == nil && link.tx.events.dropped == 0)
        link.rx.primeSequence(slot: link.rxSlot, next: UInt64(UInt32.max) - 1)
        #expect(try link.open(last).payload == [1])
    }

    @Test func esnCarriesPast32Bits() throws {
        var link = try ESPLink(esn: true)
        link.tx.primeSequence(slot: link.txSlot, next: UInt64(UInt32.max))
        link.rx.primeSequence(slot: link.rxSlot, next: UInt64(UInt32.max) - 1)
        let a = try link.seal([1]), b = try link.seal([2])
        #expect(Array(b[4..<8]) == [0, 0, 0, 0])               // low half wrapped; high half only in the AAD
        #expect(try link.open(a).payload == [1])
        #expect(try link.open(b).payload == [2])
        #expect(link.rxSnapshot?.windowTop == 1 << 32)
    }
}
