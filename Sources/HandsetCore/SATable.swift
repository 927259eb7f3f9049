import CHandsetShim

public enum SAError: Error, Equatable, Sendable {
    case tableFull
    case duplicateSPI
    case badParameters
    case keySetupFailed
    case notFound
}

/// Fixed-capacity SA table. Capacity is a compile-time parameter; the AEAD contexts live in one block
/// allocated at init (capacity + 1, the spare lets install/replace set a key before touching a live slot).
/// Inbound SAs are found by SPI through a chained hash index of `capacity` buckets (load factor <= 1).
public struct SATable<let capacity: Int>: ~Copyable {
    struct Slot {
        var used = false
        var params = SAParameters.empty
        var state = SAState()
        var ctx: Int16 = 0
        var next: Int16 = -1  // next slot in the same inbound bucket
    }

    var slots: InlineArray<capacity, Slot>
    private var buckets: InlineArray<capacity, Int16>
    private let pool: UnsafeMutableRawPointer
    private let ctxStride: Int
    private var spareCtx: Int16
    public private(set) var count = 0
    /// Moves whenever an SA comes, goes or soft-expires, i.e. whenever `outboundSlot` could answer differently;
    /// caches in front of the table compare it.
    public private(set) var version: UInt64 = 0
    private var installs: UInt64 = 0
    /// Seconds on the caller's monotonic clock; set by `tick`.
    public private(set) var now: UInt64 = 0
    /// Lifetime and sequence events for the key-delegation layer; when full the oldest are kept and the rest counted.
    public var events = FixedRing<32, SAEvent>(filler: .sequenceExhausted(spi: 0))

    public init() {
        precondition(capacity > 0 && capacity < Int(Int16.max), "SA table capacity out of range")
        let align = max(16, hs_aead_ctx_align())
        ctxStride = (hs_aead_ctx_size() + align - 1) / align * align
        pool = UnsafeMutableRawPointer.allocate(byteCount: ctxStride * (capacity + 1), alignment: align)
        pool.initializeMemory(as: UInt8.self, repeating: 0, count: ctxStride * (capacity + 1))
        slots = InlineArray(repeating: Slot())
        buckets = InlineArray(repeating: -1)
        for i in 0..<capacity { slots[i].ctx = Int16(i) }
        spareCtx = Int16(capacity)
    }

    deinit {
        for i in 0...capacity { hs_aead_wipe(pool + i * ctxStride) }
        pool.deallocate()
    }

    @inline(__always) func context(_ index: Int16) -> UnsafeMutableRawPointer { pool + Int(index) * ctxStride }
    @inline(__always) func context(slot: Int) -> UnsafeMutableRawPointer { context(slots[slot].ctx) }

    @inline(__always) private static func bucket(_ spi: UInt32) -> Int {
        Int((UInt64(spi &* 0x9E37_79B1) &* UInt64(capacity)) >> 32)
    }

    // MARK: lookup

    /// O(1) expected: one hash, then a chain that averages under two slots at full load.
    @inline(__always) public func inboundSlot(spi: UInt32) -> Int? {
        var i = buckets[Self.bucket(spi)]
        while i >= 0 {
            if slots[Int(i)].params.spi == spi { return Int(i) }
            i = slots[Int(i)].next
        }
        return nil
    }

    /// The outbound SA for `s`: among those whose selector covers it, one not yet soft-expired, newest first.
    /// That is what makes rekeying make-before-break: the new SA takes over as soon as it is installed.
    public func outboundSlot(for s: TrafficSelector) -> Int? {
        var best: Int? = nil
        for i in 0..<capacity where slots[i].used && slots[i].params.direction == .outbound {
            guard slots[i].params.selector.covers(s) else { continue }
            guard let b = best else { best = i; continue }
            let (cs, bs) = (slots[i].state, slots[b].state)
            if (!cs.softExpired && bs.softExpired) || (cs.softExpired == bs.softExpired && cs.generation > bs.generation) {
                best = i
            }
        }
        return best
    }

    public func slot(spi: UInt32, direction: SADirection) -> Int? {
        if direction == .inbound { return inboundSlot(spi: spi) }
        for i in 0..<capacity where slots[i].used && slots[i].params.direction == .outbound && slots[i].params.spi == spi {
            return i
        }
        return nil
    }

    public func snapshot(slot i: Int) -> SASnapshot? {
        guard i >= 0, i < capacity, slots[i].used else { return nil }
        let s = slots[i]
        return SASnapshot(params: s.params, seq: s.state.seq, windowTop: s.state.window.top,
                          counters: s.state.counters, installedAt: s.state.installedAt,
                          softExpired: s.state.softExpired)
    }

    public func snapshot(spi: UInt32, direction: SADirection) -> SASnapshot? {
        guard let i = slot(spi: spi, direction: direction) else { return nil }
        return snapshot(slot: i)
    }

    // MARK: install, replace, delete

    /// Installs a new SA. `key` is copied only into the fixed context pool; the caller should wipe its copy.
    @discardableResult
    public mutating func install(_ p: SAParameters, key: UnsafeRawBufferPointer) throws(SAError) -> Int {
        try validate(p, key: key)
        if p.direction == .inbound, inboundSlot(spi: p.spi) != nil { throw .duplicateSPI }
        if p.direction == .outbound, slot(spi: p.spi, direction: .outbound) != nil { throw .duplicateSPI }
        guard let free = firstFreeSlot() else { throw .tableFull }
        try keySpare(p, key: key)
        swap(&slots[free].ctx, &spareCtx)
        slots[free].used = true
        slots[free].params = p
        slots[free].state = SAState()
        slots[free].state.installedAt = now
        installs &+= 1
        slots[free].state.generation = installs
        if p.direction == .inbound { link(free) }
        count += 1
        version &+= 1
        return free
    }

    /// Replaces the SA (same SPI and direction) with new parameters and key; state starts afresh.
    /// On any error the old SA is left exactly as it was.
    public mutating func replace(spi: UInt32, direction: SADirection, with p: SAParameters,
                                 key: UnsafeRawBufferPointer) throws(SAError) {
        guard let i = slot(spi: spi, direction: direction) else { throw .notFound }
        try validate(p, key: key)
        guard p.direction == direction else { throw .badParameters }
        if p.spi != spi, self.slot(spi: p.spi, direction: direction) != nil { throw .duplicateSPI }
        try keySpare(p, key: key)
        if direction == .inbound { unlink(i) }
        swap(&slots[i].ctx, &spareCtx)
        hs_aead_wipe(context(spareCtx))
        slots[i].params = p
        slots[i].state = SAState()
        slots[i].state.installedAt = now
        installs &+= 1
        slots[i].state.generation = installs
        if direction == .inbound { link(i) }
        version &+= 1
    }

    public mutating func delete(spi: UInt32, direction: SADirection) throws(SAError) {
        guard let i = slot(spi: spi, direction: direction) else { throw .notFound }
        remove(slot: i)
    }

    /// Wipes every key and empties the table.
    public mutating func reset() {
        for i in 0..<capacity where slots[i].used { remove(slot: i) }
    }

    mutating func remove(slot i: Int) {
        if slots[i].params.direction == .inbound { unlink(i) }
        hs_aead_wipe(context(slot: i))
        let ctx = slots[i].ctx
        slots[i] = Slot()  // salt and all parameters overwritten
        slots[i].ctx = ctx
        count -= 1
        version &+= 1
    }

    private func validate(_ p: SAParameters, key: UnsafeRawBufferPointer) throws(SAError) {
        // SPIs 1...255 are reserved by IANA and 0 means "none" (RFC 4303 §2.1).
        guard p.spi > 255, key.count == p.keyLength, p.algorithm.accepts(keyLength: p.keyLength, icvLength: p.icvLength)
        else { throw .badParameters }
    }

    private func keySpare(_ p: SAParameters, key: UnsafeRawBufferPointer) throws(SAError) {
        let rc = hs_aead_setkey(context(spareCtx), p.algorithm.shimID,
                                key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        if rc != HS_OK {
            hs_aead_wipe(context(spareCtx))
            throw .keySetupFailed
        }
    }

    private func firstFreeSlot() -> Int? {
        for i in 0..<capacity where !slots[i].used { return i }
        return nil
    }

    private mutating func link(_ i: Int) {
        let b = Self.bucket(slots[i].params.spi)
        slots[i].next = buckets[b]
        buckets[b] = Int16(i)
    }

    private mutating func unlink(_ i: Int) {
        let b = Self.bucket(slots[i].params.spi)
        if buckets[b] == Int16(i) {
            buckets[b] = slots[i].next
        } else {
            var j = buckets[b]
            while j >= 0 {
                if slots[Int(j)].next == Int16(i) { slots[Int(j)].next = slots[i].next; break }
                j = slots[Int(j)].next
            }
        }
        slots[i].next = -1
    }

    // MARK: lifetimes

    /// Advances the clock and applies time-based lifetimes: soft expiry raises an event once, hard expiry
    /// wipes the SA and raises an event.
    public mutating func tick(now: UInt64) {
        self.now = now
        for i in 0..<capacity where slots[i].used {
            let age = now &- slots[i].state.installedAt
            let lt = slots[i].params.lifetime
            if lt.hardSeconds > 0 && age >= lt.hardSeconds {
                hardExpire(slot: i)
            } else if lt.softSeconds > 0 && age >= lt.softSeconds {
                softExpire(slot: i)
            }
        }
    }

    /// Seconds until hard expiry (nil when unlimited).
    public func remainingSeconds(slot i: Int) -> UInt64? {
        let hard = slots[i].params.lifetime.hardSeconds
        guard hard > 0 else { return nil }
        let age = now &- slots[i].state.installedAt
        return age >= hard ? 0 : hard - age
    }

    mutating func softExpire(slot i: Int) {
        guard !slots[i].state.softExpired else { return }
        slots[i].state.softExpired = true
        version &+= 1
        events.push(.softExpired(spi: slots[i].params.spi, direction: slots[i].params.direction))
    }

    mutating func hardExpire(slot i: Int) {
        let p = slots[i].params
        remove(slot: i)
        events.push(.hardExpired(spi: p.spi, direction: p.direction))
    }

    /// Would one more packet of `bytes` cross a hard limit?
    @inline(__always) func exceedsHardLimit(slot i: Int, bytes: Int) -> Bool {
        let lt = slots[i].params.lifetime
        let c = slots[i].state.counters
        return (lt.hardPackets > 0 && c.packets >= lt.hardPackets)
            || (lt.hardBytes > 0 && c.bytes + UInt64(bytes) > lt.hardBytes)
    }

    /// Counts a packet that passed every check, then raises soft expiry if a limit was crossed.
    @inline(__always) mutating func account(slot i: Int, bytes: Int) {
        slots[i].state.counters.packets &+= 1
        slots[i].state.counters.bytes &+= UInt64(bytes)
        let lt = slots[i].params.lifetime
        let c = slots[i].state.counters
        if (lt.softPackets > 0 && c.packets >= lt.softPackets) || (lt.softBytes > 0 && c.bytes >= lt.softBytes) {
            softExpire(slot: i)
        }
    }

    /// Sets where the sequence starts, for tools and known-answer tests: outbound sends `next` first;
    /// inbound treats `next` as the top of the window (the ESN neighbourhood).
    public mutating func primeSequence(slot i: Int, next: UInt64) {
        if slots[i].params.direction == .outbound {
            slots[i].state.seq = next &- 1
        } else {
            slots[i].state.window = SAReplayWindow(top: next)
        }
    }
}

extension SAParameters {
    static let empty = SAParameters(
        spi: 0, direction: .inbound, algorithm: .aesGCM, keyLength: 0, icvLength: 16, salt: 0,
        local: .anyV4, selector: SelectorPattern(remote: .anyV4, prefix: 0), peer: .anyV4, peerPort: 0)
}
