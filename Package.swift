// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "conveyor", targets: ["ConveyorCLI"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "Broker", targets: ["Broker"]),
        .library(name: "Producer", targets: ["Producer"]),
        .library(name: "Consumer", targets: ["Consumer"]),
        .library(name: "ConveyorTesting", targets: ["ConveyorTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // libzmq through pkg-config; see Sources/CZMQ/module.modulemap.
        .systemLibrary(
            name: "CZMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),
        // OpenSSL's libcrypto, for the SHA-256 of the built-in `sha256` task; see
        // Sources/COpenSSL/shim.h and docs/ARCHITECTURE.md for why not swift-crypto.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // A safe Swift binding over libzmq. C types never leave this module.
        .target(name: "ZeroMQ", dependencies: ["CZMQ"], swiftSettings: strict),
        // Conveyor's wire protocol: frames, commands, encoding and validation.
        .target(name: "ConveyorProtocol", dependencies: ["ZeroMQ"], swiftSettings: strict),
        .target(
            name: "Broker",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Consumer",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                "COpenSSL",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Producer",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        // Starts a real broker and real consumer processes for integration tests.
        .target(name: "ConveyorTesting", dependencies: ["ConveyorProtocol", "Producer"], swiftSettings: strict),
        .executableTarget(
            name: "ConveyorCLI",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "Broker", "Consumer", "Producer", "ConveyorTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        // Examples, built with the package so they cannot rot.
        .executableTarget(
            name: "thumbnail-consumer",
            dependencies: ["Consumer", .product(name: "Logging", package: "swift-log")],
            path: "examples/thumbnail-consumer",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "swift-producer",
            dependencies: ["Producer", "ConveyorProtocol"],
            path: "examples/swift-producer",
            swiftSettings: strict
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strict),
        .testTarget(name: "BrokerTests", dependencies: ["Broker", "ConveyorProtocol"], swiftSettings: strict),
        .testTarget(name: "ProtocolTests", dependencies: ["ConveyorProtocol"], swiftSettings: strict),
        .testTarget(name: "ConsumerTests", dependencies: ["Consumer", "ConveyorProtocol"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ConveyorTesting", "Producer", "ConveyorProtocol", "ZeroMQ"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
