import BenchSupport
import CHandsetShim

// Instructions per packet on ARM (scripts/arm-instructions, see BENCHMARKS.md): one case, `n` packets after the
// fixture's warm-up. Built as Embedded Swift for the board, run under qemu-user with an instruction-counting plugin
// twice, for n and 2n; (count(2n) - count(n)) / n cancels start-up and the fixture, as esp-instructions does.
//   esp-count list          prints the cases, one a line, numbered from 0
//   esp-count CASE N        runs case CASE for N packets

let paths = ["seal raw", "seal SATable", "seal DataPlane", "open raw", "open SATable", "open DataPlane"]
let caseCount = BenchAlgorithm.all.count * BenchAlgorithm.payloadSizes.count * paths.count

func argument(_ i: Int) -> Int? {
    guard let p = hs_argv(Int32(i)) else { return nil }
    var v = 0, k = 0
    while p[k] != 0 {
        let d = Int(p[k]) - 48
        guard d >= 0, d <= 9, v < 1_000_000_000 else { return nil }
        v = v * 10 + d
        k += 1
    }
    return k > 0 ? v : nil
}

func describe(_ c: Int) -> (BenchAlgorithm, Int, Int) {
    let path = c % paths.count, rest = c / paths.count
    let sizes = BenchAlgorithm.payloadSizes
    return (BenchAlgorithm.all[rest / sizes.count], sizes[rest % sizes.count], path)
}

if hs_argc() == 2 {
    for c in 0..<caseCount {
        let (alg, size, path) = describe(c)
        print("\(c) \(paths[path]) \(alg.name) \(size)")
    }
    hs_exit(0)
}
guard hs_argc() == 3, let c = argument(1), c < caseCount, let n = argument(2) else {
    print("usage: esp-count list | esp-count CASE N")
    hs_exit(2)
}
let (alg, size, path) = describe(c)
func run(_ alg: BenchAlgorithm, _ size: Int, _ path: Int, _ n: Int) -> Int {
    var sink = 0
    if path % 3 == 2 {
        let dp = DataPlaneFixture(alg, payload: size)
        for _ in 0..<n { sink &+= path < 3 ? dp.seal() : dp.open() }
        return sink
    }
    let esp = ESPFixture(alg, payload: size)
    for _ in 0..<n {
        switch path {
        case 0: sink &+= Int(esp.sealRaw())
        case 1: sink &+= esp.sealESP()
        case 3: sink &+= Int(esp.openRaw())
        default: sink &+= esp.openESP()
        }
    }
    return sink
}
let sink = run(alg, size, path, n)
print("esp-count: \(paths[path]) \(alg.name) \(size) n=\(n) sink=\(sink)")
