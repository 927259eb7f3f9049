// swift-tools-version: 6.1
// Benchmarks for the handset data plane (ordo-one/benchmark). A separate package so the firmware package
// never depends on the benchmark stack. Run with scripts/bench; see BENCHMARKS.md.
import PackageDescription

func benchmark(_ name: String, extra: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + extra,
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}

let package = Package(
    name: "handset-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "handset", path: ".."),
        // The MallocInterposer trait keeps the malloc metrics and drops the jemalloc dependency (not offline).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "BenchSupport",
            dependencies: [.product(name: "HandsetCore", package: "handset")],
            path: "Sources/BenchSupport"),
        // Instruction counts under callgrind (scripts/callgrind-esp): a plain executable, no benchmark harness.
        .target(name: "CCallgrind", path: "Sources/CCallgrind"),
        .executableTarget(
            name: "esp-instructions", dependencies: ["BenchSupport", "CCallgrind"], path: "Sources/esp-instructions",
            linkerSettings: [.linkedLibrary("m")]),  // BenchSupport rounds; the benchmark targets get libm via Foundation
        // Instruction counts on ARM (scripts/arm-instructions): built as Embedded Swift, run under qemu-user.
        .executableTarget(
            name: "esp-count", dependencies: ["BenchSupport"], path: "Sources/esp-count",
            linkerSettings: [.linkedLibrary("m")]),
        // One executable per benchmark group, each in Benchmarks/NAME/NAME.swift.
        benchmark("ESP"),
        benchmark("ESPOverhead"),
        benchmark("SALookup"),
        benchmark("ATLine", extra: [.product(name: "BearerDriver", package: "handset")]),
    ]
)
