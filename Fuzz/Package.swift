// swift-tools-version: 6.1
// libFuzzer targets for the handset parsers (issue 7). A separate package so the firmware package never
// carries fuzzing flags. Build and run with scripts/fuzz; see Fuzz/README.md.
import PackageDescription

func fuzzer(_ name: String, _ deps: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: deps,
        path: "Sources/\(name)",
        // libFuzzer supplies main; the Swift file only exports LLVMFuzzerTestOneInput.
        swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
    name: "handset-fuzz",
    dependencies: [
        .package(name: "handset", path: ".."),
    ],
    targets: [
        fuzzer("FuzzATParser", [.product(name: "BearerDriver", package: "handset")]),
        fuzzer("FuzzSMSPDU", [.product(name: "BearerDriver", package: "handset")]),
        fuzzer("FuzzKeyDelegation", [.product(name: "HandsetCore", package: "handset")]),
        fuzzer("FuzzESPOpen", [.product(name: "HandsetCore", package: "handset")]),
        fuzzer("FuzzSMPPPDU", [.product(name: "SMPP", package: "handset")]),
    ]
)
