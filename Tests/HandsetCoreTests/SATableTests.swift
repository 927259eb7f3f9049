import CHandsetShim
import Testing
@testable import HandsetCore

private func sa(_ spi: UInt32, _ direction: SADirection = .inbound, keyLength: Int = 16, salt: UInt32 = 0x0102_0304,
                lifetime: SALifetime = SALifetime()) -> SAParameters {
    SAParameters(spi: spi, direction: direction, algorithm: .aesGCM, keyLength: keyLength, salt: salt,
                 local: IPAddress(10, 0, 0, 2), selector: SelectorPattern(remote: IPAddress(192, 0, 2, UInt8(spi & 0xFF)), prefix: 32),
                 peer: IPAddress(192, 0, 2, 1), lifetime: lifetime)
}

private func key(_ fill: UInt8, _ n: Int = 16) -> [UInt8] { [UInt8](repeating: fill, count: n) }

extension SATable {
    @discardableResult
    mutating func add(_ p: SAParameters, _ k: [UInt8]) throws -> Int {
        try k.withUnsafeBytes { b in try install(p, key: b) }
    }

    /// Every byte of a slot's AEAD context is zero (what hs_aead_wipe leaves).
    func contextIsWiped(slot i: Int) -> Bool {
        let c = UnsafeRawBufferPointer(start: context(slot: i), count: hs_aead_ctx_size())
        return c.allSatisfy { $0 == 0 }
    }
}

/// SPIs whose inbound hash lands in the same bucket of a table of `capacity` (the table's own formula).
private func collidingSPIs(count: Int, capacity: Int) -> [UInt32] {
    func bucket(_ spi: UInt32) -> Int { Int((UInt64(spi &* 0x9E37_79B1) &* UInt64(capacity)) >> 32) }
    var out: [UInt32] = []
    var spi: UInt32 = 0x1000
    while out.count < count {
        if bucket(spi) == bucket(0x1000) { out.append(spi) }
        spi += 1
    }
    return out
}

@Suite struct SATableTests {
    @Test func installLookupSnapshot() throws {
        var t = SATable<8>()
        let i = try t.add(sa(0x1234), key(1))
        let o = try t.add(sa(0x1234, .outbound), key(2))  // same SPI, other direction: allowed
        #expect(t.count == 2)
        #expect(t.inboundSlot(spi: 0x1234) == i)
        #expect(t.slot(spi: 0x1234, direction: .outbound) == o)
        #expect(t.snapshot(slot: i)?.params == sa(0x1234))
        #expect(t.snapshot(slot: i)?.counters == SACounters())
        #expect(t.outboundSlot(for: TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(192, 0, 2, 0x34),
                                                    localPort: 1, remotePort: 2)) == o)
        #expect(t.outboundSlot(for: TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(192, 0, 2, 0x35),
                                                    localPort: 1, remotePort: 2)) == nil)
        #expect(t.inboundSlot(spi: 0x1235) == nil)
    }

    @Test func rejectsBadParametersWithoutChange() throws {
        var t = SATable<4>()
        try t.add(sa(0x500), key(1))
        let before = t.snapshot(spi: 0x500, direction: .inbound)
        #expect(throws: SAError.badParameters) { try t.add(sa(255), key(1)) }            // reserved SPI
        #expect(throws: SAError.badParameters) { try t.add(sa(0x501), key(1, 15)) }      // key shorter than declared
        #expect(throws: SAError.badParameters) { try t.add(sa(0x501, keyLength: 24), key(1, 24)) }  // AES-192
        var chacha = sa(0x501); chacha.algorithm = .chacha20Poly1305
        #expect(throws: SAError.badParameters) { try t.add(chacha, key(1)) }             // ChaCha needs 32 bytes
        var icv = sa(0x501); icv.icvLength = 10
        #expect(throws: SAError.badParameters) { try t.add(icv, key(1)) }
        #expect(t.count == 1)
        #expect(t.snapshot(spi: 0x500, direction: .inbound) == before)
    }

    @Test func duplicateSPI() throws {
        var t = SATable<4>()
        try t.add(sa(0x700), key(1))
        try t.add(sa(0x700, .outbound), key(1))
        #expect(throws: SAError.duplicateSPI) { try t.add(sa(0x700, salt: 9), key(3)) }
        #expect(throws: SAError.duplicateSPI) { try t.add(sa(0x700, .outbound, salt: 9), key(3)) }
        #expect(t.count == 2)
        #expect(t.snapshot(spi: 0x700, direction: .inbound)?.params.salt == 0x0102_0304)
    }

    @Test func tableFull() throws {
        var t = SATable<4>()
        for s in UInt32(0x800)..<0x804 { try t.add(sa(s), key(UInt8(s & 0xFF))) }
        #expect(throws: SAError.tableFull) { try t.add(sa(0x900), key(1)) }
        #expect(throws: SAError.tableFull) { try t.add(sa(0x900, .outbound), key(1)) }
        #expect(t.count == 4)
        #expect(t.inboundSlot(spi: 0x900) == nil)
        for s in UInt32(0x800)..<0x804 { #expect(t.inboundSlot(spi: s) != nil) }
        try t.delete(spi: 0x802, direction: .inbound)
        try t.add(sa(0x900), key(1))  // a freed slot is reused
        #expect(t.count == 4)
    }

    @Test(arguments: [4, 64])
    func lookupsAtCapacityWithCollidingBuckets(_ n: Int) throws {
        func run<let c: Int>(_ t: inout SATable<c>) throws {
            let spis = collidingSPIs(count: c, capacity: c)
            var slots: [UInt32: Int] = [:]
            for s in spis { slots[s] = try t.add(sa(s), key(UInt8(truncatingIfNeeded: s))) }
            #expect(t.count == c)
            for s in spis { #expect(t.inboundSlot(spi: s) == slots[s]) }
            #expect(t.inboundSlot(spi: spis.last! &+ 1) == nil)
            // Unlink from the head, the middle and the tail of the one chain; the rest must still be found.
            let gone = [spis[0], spis[c / 2], spis[c - 1]]
            for s in gone { try t.delete(spi: s, direction: .inbound) }
            for s in spis { #expect((t.inboundSlot(spi: s) == nil) == gone.contains(s)) }
            for s in gone { try t.add(sa(s), key(9)) }
            for s in spis { #expect(t.snapshot(slot: t.inboundSlot(spi: s)!)?.params.spi == s) }
        }
        if n == 4 { var t = SATable<4>(); try run(&t) } else { var t = SATable<64>(); try run(&t) }
    }

    @Test func replaceStartsAfreshAndTheOldKeyStopsWorking() throws {
        var link = try ESPLink()
        let oldKeyPacket = try link.seal([1, 2, 3])
        _ = try link.open(try link.seal([4]))
        #expect(link.rxSnapshot?.counters.packets == 1)
        var p = link.params
        p.direction = .inbound
        p.salt = 0x0BAD_CAFE
        try key(0x77).withUnsafeBytes { k in try link.rx.replace(spi: ESPLink.spi, direction: .inbound, with: p, key: k) }
        let s = link.rxSnapshot!
        #expect(s.params.salt == 0x0BAD_CAFE)
        #expect(s.counters == SACounters())
        #expect(s.windowTop == 0)
        #expect(throws: ESPError.authenticationFailed) { try link.open(oldKeyPacket) }
    }

    @Test func failedReplaceLeavesTheOldSA() throws {
        var link = try ESPLink()
        _ = try link.open(try link.seal([1]))
        let before = link.rxSnapshot!
        var bad = link.params
        bad.direction = .inbound
        bad.keyLength = 24
        #expect(throws: SAError.badParameters) {
            try key(1, 24).withUnsafeBytes { k in try link.rx.replace(spi: ESPLink.spi, direction: .inbound, with: bad, key: k) }
        }
        #expect(throws: SAError.notFound) {
            try key(1).withUnsafeBytes { k in try link.rx.replace(spi: 0x4444, direction: .inbound, with: bad, key: k) }
        }
        #expect(link.rxSnapshot == before)
        #expect(try link.open(try link.seal([2])).payload == [2])  // the old key still works
    }

    @Test func deleteWipesAndForgets() throws {
        var t = SATable<4>()
        let i = try t.add(sa(0xA00), key(0x55))
        #expect(t.contextIsWiped(slot: i) == false)
        try t.delete(spi: 0xA00, direction: .inbound)
        #expect(t.contextIsWiped(slot: i) == true)
        #expect(t.slots[i].params.salt == 0)
        #expect(t.inboundSlot(spi: 0xA00) == nil)
        #expect(t.count == 0)
        #expect(throws: SAError.notFound) { try t.delete(spi: 0xA00, direction: .inbound) }
    }

    @Test func resetWipesEverything() throws {
        var t = SATable<4>()
        var used: [Int] = []
        for s in UInt32(0xB00)..<0xB03 { used.append(try t.add(sa(s, s % 2 == 0 ? .inbound : .outbound), key(0x66))) }
        t.reset()
        #expect(t.count == 0)
        for i in used { #expect(t.contextIsWiped(slot: i) == true); #expect(t.snapshot(slot: i) == nil) }
        for s in UInt32(0xB00)..<0xB03 { #expect(t.inboundSlot(spi: s) == nil) }
        try t.add(sa(0xB00), key(1))  // usable again
        #expect(t.count == 1)
    }

    @Test func softExpiryRaisesOneEvent() throws {
        var lt = SALifetime()
        lt.softPackets = 2
        var link = try ESPLink(lifetime: lt)
        for k in 0..<5 { _ = try link.open(try link.seal([UInt8(k)])) }
        #expect(link.rx.events.pop() == .softExpired(spi: ESPLink.spi, direction: .inbound))
        #expect(link.rx.events.pop() == nil)
        #expect(link.tx.events.pop() == .softExpired(spi: ESPLink.spi, direction: .outbound))
        #expect(link.tx.events.pop() == nil)
        #expect(link.rxSnapshot?.softExpired == true)
        #expect(link.rxSnapshot?.counters.packets == 5)  // soft expiry does not stop traffic

        var t = SATable<4>()
        try t.add(sa(0xC00, lifetime: SALifetime(softSeconds: 10, hardSeconds: 0)), key(1))
        t.tick(now: 9)
        #expect(t.events.pop() == nil)
        t.tick(now: 10); t.tick(now: 11); t.tick(now: 1000)
        #expect(t.events.pop() == .softExpired(spi: 0xC00, direction: .inbound))
        #expect(t.events.pop() == nil)
    }

    @Test func hardExpiryRemovesAndWipes() throws {
        var t = SATable<4>()
        t.tick(now: 1000)
        let keep = try t.add(sa(0xD01), key(2))
        let i = try t.add(sa(0xD00, lifetime: SALifetime(softSeconds: 0, hardSeconds: 30)), key(1))
        #expect(t.remainingSeconds(slot: i) == 30)
        t.tick(now: 1029)
        #expect(t.snapshot(slot: i) != nil)
        #expect(t.remainingSeconds(slot: i) == 1)
        t.tick(now: 1030)
        #expect(t.snapshot(slot: i) == nil)
        #expect(t.contextIsWiped(slot: i) == true)
        #expect(t.inboundSlot(spi: 0xD00) == nil)
        #expect(t.count == 1)
        #expect(t.events.pop() == .hardExpired(spi: 0xD00, direction: .inbound))
        #expect(t.snapshot(slot: keep) != nil)
        #expect(t.contextIsWiped(slot: keep) == false)
    }

    @Test func eventQueueKeepsOldestWhenFull() {
        var q = FixedRing<2, SAEvent>(filler: .sequenceExhausted(spi: 0))
        q.push(.softExpired(spi: 1, direction: .inbound))
        q.push(.softExpired(spi: 2, direction: .inbound))
        q.push(.softExpired(spi: 3, direction: .inbound))
        #expect(q.dropped == 1)
        #expect(q.pop() == .softExpired(spi: 1, direction: .inbound))
        #expect(q.pop() == .softExpired(spi: 2, direction: .inbound))
        #expect(q.pop() == nil)
    }
}
