import BenchSupport
import CCallgrind

// Instructions per packet, counted by callgrind (run through scripts/callgrind-esp, see BENCHMARKS.md).
// Each case runs `n` packets, then `2n`, each between a zero and a dump of callgrind's counters; the script takes
// (count(2n) - count(n)) / n, so loop entry, the client requests and the warm-up cancel out. `n` is a multiple of
// the ring size, so the open cases reset the replay window the same number of times per packet in both runs.
// Arguments (optional): algorithm names and payload sizes to restrict the run to.

let n = 8 * ringSize
let args = CommandLine.arguments.dropFirst()
let algorithms = BenchAlgorithm.all.filter { a in !args.contains { $0.contains("-") } || args.contains(a.name) }
let sizes = BenchAlgorithm.payloadSizes.filter { s in !args.contains { Int($0) != nil } || args.contains(String(s)) }
if cg_running() == 0 {
    print("esp-instructions: not under valgrind; run scripts/callgrind-esp")
}

@inline(__always) func measure(_ name: String, _ body: () -> Void) {
    let once = "\(name) n=\(n)", twice = "\(name) n=\(2 * n)"
    for _ in 0..<(2 * ringSize) { body() }  // warm-up; leaves the ring position at 0
    cg_zero()
    for _ in 0..<n { body() }
    cg_dump(once)
    cg_zero()
    for _ in 0..<(2 * n) { body() }
    cg_dump(twice)
}

var sink = 0
for alg in algorithms {
    for size in sizes {
        let esp = ESPFixture(alg, payload: size)
        let dp = DataPlaneFixture(alg, payload: size)
        let tag = "\(alg.name) \(size)"
        measure("seal raw \(tag)") { sink &+= Int(esp.sealRaw()) }
        measure("seal SATable \(tag)") { sink &+= esp.sealESP() }
        measure("seal DataPlane \(tag)") { sink &+= dp.seal() }
        measure("open raw \(tag)") { sink &+= Int(esp.openRaw()) }
        measure("open SATable \(tag)") { sink &+= esp.openESP() }
        measure("open DataPlane \(tag)") { sink &+= dp.open() }
    }
}
print("esp-instructions: done (\(sink))")
