// swift-tools-version: 6.1
// Handset firmware core. Handset targets (CHandsetShim, HandsetCore, BearerDriver, handset-fw) must stay
// embedded-clean: the embedded flags live in Boards/toolsets/*.json, never here.
import PackageDescription

let handsetSwift: [SwiftSetting] = [
    .enableExperimentalFeature("Lifetimes"),
]

let package = Package(
    name: "handset",
    products: [
        .executable(name: "handset-emu", targets: ["handset-emu"]),
        .executable(name: "handset-fw", targets: ["handset-fw"]),
        .executable(name: "handset-gateway", targets: ["handset-gateway"]),
        .library(name: "HandsetCore", targets: ["HandsetCore"]),
        .library(name: "BearerDriver", targets: ["BearerDriver"]),
        .library(name: "SMPP", targets: ["SMPP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Handset side: embedded-clean.
        .target(name: "CHandsetShim", linkerSettings: [.linkedLibrary("mbedcrypto")]),
        .target(name: "HandsetCore", dependencies: ["CHandsetShim"], swiftSettings: handsetSwift),
        .target(name: "BearerDriver", dependencies: ["CHandsetShim"], swiftSettings: handsetSwift),
        .executableTarget(name: "handset-fw", dependencies: ["HandsetCore", "BearerDriver", "CHandsetShim"],
                          swiftSettings: handsetSwift),

        // Host side: full Swift.
        .target(name: "SMPP"),
        .target(
            name: "SMPPNIO",
            dependencies: ["SMPP", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        .target(
            name: "ModemSim",
            dependencies: ["BearerDriver", "CHandsetShim", "SMPP", .product(name: "Logging", package: "swift-log")]),
        .target(name: "ProxyIKE"),
        // The gateway's protocol core: key-delegation state machine, counters, the device record and the ports its
        // adapters plug into (RegistryStore, PeerNegotiator, TrustedServices). No store, socket or IKE engine here.
        .target(
            name: "GatewayCore",
            dependencies: ["HandsetCore", .product(name: "Logging", package: "swift-log")]),
        // Adapters around the core: SQLite and PostgreSQL stores, the strongSwan negotiator, the back-end socket.
        .target(
            name: "Gateway",
            dependencies: [
                "GatewayCore", "HandsetCore", "CHandsetShim", "ProxyIKE",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The emulator's side of the gateway's world, out of the Gateway core: the opposite party (EmulatedPeer) and
        // the in-process gateway's UDP listener. Used by handset-emu, tests, and the daemon's `negotiator = emulated`.
        .target(
            name: "EmulatorSupport",
            dependencies: ["Gateway", "HandsetCore", .product(name: "Logging", package: "swift-log")]),
        // The gateway as an operator runs it: config, SMPP, UDP, metrics and lifecycle around the Gateway core.
        .target(
            name: "GatewayDaemon",
            dependencies: [
                "Gateway", "SMPP", "SMPPNIO", "HandsetCore", "ProxyIKE", "EmulatorSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "handset-gateway",
            dependencies: [
                "GatewayDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "handset-emu",
            dependencies: [
                "HandsetCore", "BearerDriver", "ModemSim", "Gateway", "EmulatorSupport", "SMPP", "SMPPNIO", "ProxyIKE",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .testTarget(
            name: "HandsetCoreTests",
            dependencies: [
                "HandsetCore", "CHandsetShim",
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "EmulatorSupport", "HandsetCore", "ProxyIKE", "ModemSim", .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        .testTarget(name: "HandsetEmuTests", dependencies: ["handset-emu", "Gateway", "EmulatorSupport", "HandsetCore"]),
        .testTarget(name: "BearerDriverTests", dependencies: ["BearerDriver", "CHandsetShim"]),
        .testTarget(name: "ModemSimTests", dependencies: ["ModemSim", "BearerDriver", "SMPP"]),
        .testTarget(name: "SMPPTests", dependencies: ["SMPP", "SMPPNIO"]),
        .testTarget(name: "GatewayDaemonTests", dependencies: [
            "GatewayDaemon", "Gateway", "SMPP", "HandsetCore", .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "ProxyIKETests", dependencies: ["ProxyIKE"]),
        .testTarget(name: "HandsetFirmwareTests", dependencies: ["handset-fw", "CHandsetShim"]),
    ]
)
