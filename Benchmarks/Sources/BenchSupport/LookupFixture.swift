import HandsetCore

/// SPIs as a gateway hands them out: random-looking, distinct, above the IANA-reserved 1...255.
/// The same xorshift sequence for every table size, so the 4-SA table holds the first 4 of the 256.
public func benchSPIs(_ n: Int) -> [UInt32] {
    var x: UInt32 = 0x2545_F491
    var out = [UInt32]()
    while out.count < n {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        if x > 255 && !out.contains(x) { out.append(x) }
    }
    return out
}

/// A full SATable of inbound SAs and the SPIs to look up, in an order that is not the install order.
public final class LookupFixture<let capacity: Int>: @unchecked Sendable {
    var table: SATable<capacity>
    let probes: [UInt32]

    public init() {
        let spis = benchSPIs(capacity)
        let key = [UInt8](repeating: 0x77, count: 16)
        let any = IPAddress(v4: 0)
        var t = SATable<capacity>()
        for s in spis {
            let p = SAParameters(spi: s, direction: .inbound, algorithm: .aesGCM, keyLength: 16, salt: 1, local: any,
                                 selector: SelectorPattern(remote: any, prefix: 0), peer: any)
            key.withUnsafeBytes { _ = try! t.install(p, key: $0) }
        }
        table = t
        // 1,000 probes walking the installed SPIs with a stride coprime to the count.
        probes = (0..<1_000).map { spis[($0 &* 7 &+ 3) % capacity] }
    }

    public var probeCount: Int { probes.count }

    /// Looks up every probe once; returns the sum of slots found so nothing is optimised away.
    @inline(__always) public func lookupAll() -> Int {
        var sum = 0
        probes.withUnsafeBufferPointer { p in
            for s in p { sum &+= table.inboundSlot(spi: s) ?? -1_000_000 }
        }
        return sum
    }
}
