import Benchmark
import BenchSupport

// ESP seal/open per packet, each next to the raw AEAD call (hs_aead_seal / hs_aead_open) on the same buffers
// and the same byte count. scalingFactor .kilo: 1,000 packets per iteration; run with --scale for per-packet
// figures. Names sort so that raw, SATable and DataPlane of one size and algorithm sit together.
let benchmarks: @Sendable () -> Void = {
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 2,
        scalingFactor: .kilo,
        maxDuration: .milliseconds(600),
        maxIterations: 1_000)

    // What the harness itself costs per iteration (its own mallocs included): subtract it from the rows below.
    Benchmark("0 ESP harness baseline (empty iteration)", configuration: config) { b in
        for i in b.scaledIterations { blackHole(i) }
    }

    for alg in BenchAlgorithm.all {
        for size in BenchAlgorithm.payloadSizes {
            let esp = ESPFixture(alg, payload: size)
            let dp = DataPlaneFixture(alg, payload: size)
            let tag = "\(alg.name) \(size)B"
            Benchmark("seal \(tag) 1 raw AEAD", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(esp.sealRaw()) }
            }
            Benchmark("seal \(tag) 2 SATable", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(esp.sealESP()) }
            }
            Benchmark("seal \(tag) 3 DataPlane", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(dp.seal()) }
            }
            Benchmark("open \(tag) 1 raw AEAD", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(esp.openRaw()) }
            }
            Benchmark("open \(tag) 2 SATable", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(esp.openESP()) }
            }
            Benchmark("open \(tag) 3 DataPlane", configuration: config) { b in
                for _ in b.scaledIterations { blackHole(dp.open()) }
            }
        }
    }
}
