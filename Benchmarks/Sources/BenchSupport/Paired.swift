#if !hasFeature(Embedded)  // the clock is host-only; esp-count (Embedded, ARM) counts instructions instead
/// Framing overhead measured pairwise: in each of `rounds` rounds, `batch` raw AEAD calls and `batch` calls
/// of the full path run back to back on the same buffers (which goes first alternates), so both halves see
/// the same CPU contention. Returns the median over rounds of full/raw time in per-mille (1050 = 5.0 %
/// overhead; never negative, as the histograms need). The median drops rounds hit by preemption, which on a
/// shared 2-core machine make separately timed benchmarks useless for a 5 % question.
public func pairedOverhead(rounds: Int = 15, batch: Int = 32, raw: () -> Void, full: () -> Void) -> Int {
    let clock = ContinuousClock()
    var ratios = [Double](repeating: 0, count: rounds)
    for r in 0..<rounds {
        var rawTime = Duration.zero, fullTime = Duration.zero
        for half in 0..<2 {
            let runRaw = (r + half) % 2 == 0
            let t0 = clock.now
            if runRaw { for _ in 0..<batch { raw() } } else { for _ in 0..<batch { full() } }
            let t = clock.now - t0
            if runRaw { rawTime = t } else { fullTime = t }
        }
        ratios[r] = nanoseconds(fullTime) / nanoseconds(rawTime)
    }
    ratios.sort()
    return Int((ratios[rounds / 2] * 1000).rounded())
}

@inline(__always) func nanoseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
}

extension ESPFixture {
    public func sealOverhead() -> Int { pairedOverhead(raw: { _ = sealRaw() }, full: { _ = sealESP() }) }
    public func openOverhead() -> Int { pairedOverhead(raw: { _ = openRaw() }, full: { _ = openESP() }) }
}

extension DataPlaneFixture {
    public func sealOverhead(vs raw: ESPFixture) -> Int { pairedOverhead(raw: { _ = raw.sealRaw() }, full: { _ = seal() }) }
    public func openOverhead(vs raw: ESPFixture) -> Int { pairedOverhead(raw: { _ = raw.openRaw() }, full: { _ = open() }) }
}
#endif
