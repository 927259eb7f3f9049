import Benchmark
import BenchSupport

// Inbound SA lookup by SPI (SATable.inboundSlot) in full tables of 4, 64 and 256 SAs with the same
// random-looking SPIs. Each iteration does 1,000 lookups; run with --scale for per-lookup figures.
let benchmarks: @Sendable () -> Void = {
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .milliseconds(800),
        maxIterations: 100_000)

    // What the harness itself costs per iteration (its own mallocs included): subtract it from the rows below.
    Benchmark("0 SALookup harness baseline (empty iteration)", configuration: config) { b in
        for i in b.scaledIterations { blackHole(i) }
    }

    let t4 = LookupFixture<4>(), t64 = LookupFixture<64>(), t256 = LookupFixture<256>()
    precondition(t4.probeCount == 1_000 && t64.probeCount == 1_000 && t256.probeCount == 1_000)
    Benchmark("inboundSlot   4 SAs", configuration: config) { _ in blackHole(t4.lookupAll()) }
    Benchmark("inboundSlot  64 SAs", configuration: config) { _ in blackHole(t64.lookupAll()) }
    Benchmark("inboundSlot 256 SAs", configuration: config) { _ in blackHole(t256.lookupAll()) }
}
