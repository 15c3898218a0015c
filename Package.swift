// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "steprund",
    products: [
        .executable(name: "steprund", targets: ["steprund"]),
        .executable(name: "steprunctl", targets: ["steprunctl"]),
        .executable(name: "steprun-bench", targets: ["steprun-bench"]),
        .library(name: "StepRunClient", targets: ["StepRunClient"]),
        .library(name: "StepRunCore", targets: ["StepRunCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // MARK: C adapters
        .systemLibrary(
            name: "CLibPQ",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "CStepRunProto",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),

        // MARK: Domain and wire
        .target(
            name: "StepRunCore"
        ),
        .target(
            name: "StepRunWire",
            dependencies: [
                "CStepRunProto",
                "StepRunCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),

        // MARK: Postgres repository
        .target(
            name: "StepRunPostgres",
            dependencies: [
                "CLibPQ",
                "StepRunCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: Daemon and client
        .target(
            name: "StepRunServer",
            dependencies: [
                "StepRunCore",
                "StepRunWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "StepRunClient",
            dependencies: [
                "StepRunCore",
                "StepRunWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "steprund",
            dependencies: [
                "CMalloc",
                "StepRunCore",
                "StepRunPostgres",
                "StepRunServer",
                "StepRunWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "steprun-fuzz",
            dependencies: [
                "StepRunCore",
                "StepRunWire",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "steprunctl",
            dependencies: [
                "StepRunClient",
                "StepRunCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "steprun-bench",
            dependencies: [
                "StepRunClient",
                "StepRunCore",
                "StepRunPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // MARK: Test support (used only by the test targets)
        .target(
            name: "StepRunTesting",
            dependencies: [
                "StepRunCore", "StepRunWire", "StepRunServer", "StepRunPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        // MARK: Tests
        .testTarget(
            name: "StepRunCoreTests",
            dependencies: ["StepRunCore"]
        ),
        .testTarget(
            name: "StepRunPostgresTests",
            dependencies: ["StepRunPostgres", "StepRunCore", "StepRunTesting"]
        ),
        .testTarget(
            name: "StepRunWireTests",
            dependencies: ["StepRunWire", "StepRunCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "StepRunEndToEndTests",
            dependencies: [
                "StepRunClient", "StepRunServer", "StepRunPostgres", "StepRunCore", "StepRunWire", "StepRunTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "StepRunDaemonTests",
            dependencies: ["steprund", "StepRunClient", "StepRunCore", "StepRunTesting"]
        ),
        // The server's connection handling, without a database: the state machine alone, and the
        // real server on real sockets over a scripted store.
        .testTarget(
            name: "StepRunServerTests",
            dependencies: [
                "StepRunServer", "StepRunCore", "StepRunWire", "StepRunTesting",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StepRunCtlTests",
            dependencies: [
                "steprunctl", "StepRunClient", "StepRunServer", "StepRunPostgres", "StepRunCore", "StepRunWire", "StepRunTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
