// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// Module names carry the `Conveyor` prefix: SwiftPM needs module names to be unique across a whole
// dependency graph, and a module named like a type inside it (`Broker.Broker`) makes that type
// impossible to qualify. The folders keep their short names (docs/ARCHITECTURE.md, "Decisions").
let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "conveyor", targets: ["ConveyorCLI"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "ConveyorBroker", targets: ["ConveyorBroker"]),
        .library(name: "ConveyorJournal", targets: ["ConveyorJournal"]),
        .library(name: "ConveyorProducer", targets: ["ConveyorProducer"]),
        .library(name: "ConveyorConsumer", targets: ["ConveyorConsumer"]),
        .library(name: "ConveyorProcess", targets: ["ConveyorProcess"]),
        .library(name: "ConveyorBuiltinTasks", targets: ["ConveyorBuiltinTasks"]),
        .library(name: "ConveyorTesting", targets: ["ConveyorTesting"]),
        .library(name: "ConveyorWorker", targets: ["ConveyorWorker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // Only its `Instrumentation` product (no dependencies of its own): the producer injects the
        // caller's trace context into a task's options, the consumer extracts it for the handler.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.0.0"),
        // Webhook deliveries' HTTP client (ConveyorWebhooks only; no library product links it).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        // The HTTP gateway's server (ConveyorGateway only; no library product links it).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Already in the graph through Hummingbird; named for `HTTPField.Name` (Idempotency-Key).
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // Already in the graph through async-http-client; named for the gateway's TLS certificate.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
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
        // What every role needs from the OS: clocks, thread names, termination signals, and the
        // bridge that runs a blocking socket loop on a thread of its own as a Service.
        .target(
            name: "ConveyorSystem",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Conveyor's wire protocol: frames, commands, encoding and validation.
        .target(name: "ConveyorProtocol", dependencies: ["ZeroMQ"], swiftSettings: strict),
        // CRC-32C in C: the CPU's crc32 instruction where there is one (see Sources/CCRC32C).
        .target(name: "CCRC32C", path: "Sources/CCRC32C"),
        // The broker's write-ahead journal: records, segments, group commit, recovery, compaction.
        .target(
            name: "ConveyorJournal",
            dependencies: [
                "CCRC32C", "ConveyorProtocol", "ConveyorSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            path: "Sources/Journal",
            swiftSettings: strict
        ),
        .target(
            name: "ConveyorBroker",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "ConveyorSystem", "ConveyorJournal", "ConveyorSchedule",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Broker",
            swiftSettings: strict
        ),
        .target(
            name: "ConveyorConsumer",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "ConveyorSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            path: "Sources/Consumer",
            swiftSettings: strict
        ),
        // The demo and benchmark tasks (echo, sleep, sha256, fail, flaky): a module of their own,
        // so that a consumer app that does not use them does not link libcrypto.
        .target(
            name: "ConveyorBuiltinTasks",
            dependencies: ["ConveyorConsumer", "ConveyorProtocol", "COpenSSL"],
            path: "Sources/BuiltinTasks",
            swiftSettings: strict
        ),
        .target(
            name: "ConveyorProducer",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "ConveyorSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            path: "Sources/Producer",
            swiftSettings: strict
        ),
        // Child processes, each stopped by a teardown that ends in SIGKILL: the consumer supervisor
        // (on swift-subprocess) and the managed processes of the test kit, demo and benchmarks.
        .target(
            name: "ConveyorProcess",
            dependencies: [
                "ConveyorSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Periodic schedules' arithmetic: cron expressions, their next fire time in a time zone,
        // tick ids and the missed-tick policy (docs/SCHEDULES.md). Pure: no sockets, no clock.
        .target(name: "ConveyorSchedule", dependencies: ["ConveyorProtocol"], path: "Sources/Schedule", swiftSettings: strict),
        // Starts a real broker and real consumer processes for integration tests.
        .target(
            name: "ConveyorTesting",
            dependencies: [
                "ConveyorProtocol", "ConveyorProducer", "ConveyorProcess", "ConveyorSystem", "ZeroMQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The CLI's options from the environment and a config file (a small TOML subset), read off
        // the argument parser's own description of the commands; see docs/CLI.md.
        .target(name: "ConveyorCLIConfig", path: "Sources/CLIConfig", swiftSettings: strict),
        // A process's metrics and their listener (`--metrics-listen`): a swift-prometheus registry
        // and plain-socket HTTP for /metrics, /healthz and /readyz; no HTTP stack.
        .target(
            name: "ConveyorMetrics",
            dependencies: [
                "ConveyorSystem",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Metrics",
            swiftSettings: strict
        ),
        // A ready-made worker command: the stock consumer's options and supervision for an app's
        // own TaskRegistry (`ConveyorWorker.main(registry:)`); the CLI's `consumer` is one.
        .target(
            name: "ConveyorWorker",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "ConveyorSystem", "ConveyorConsumer", "ConveyorProcess", "ConveyorMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Worker",
            swiftSettings: strict
        ),
        // Webhook deliveries: the signer, the callback address policy and the sender that serves
        // `conveyor.webhook` (docs/GATEWAY.md). Used by `conveyor gateway`; not a library product.
        .target(
            name: "ConveyorWebhooks",
            dependencies: [
                "ConveyorConsumer", "ConveyorProtocol", "COpenSSL",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Webhooks",
            swiftSettings: strict
        ),
        // `conveyor gateway`: HTTP and JSON in front of a Producer (docs/GATEWAY.md). Not a library
        // product, so that the HTTP stack stays out of what applications link.
        .target(
            name: "ConveyorGateway",
            dependencies: [
                "ConveyorProducer", "ConveyorProtocol", "ConveyorSystem", "COpenSSL", "ConveyorConsumer", "ConveyorWebhooks", "ZeroMQ",
                .product(name: "Hummingbird", package: "hummingbird"),
                // TLS for --tls-cert-file/--tls-key-file (swift-nio-ssl is in the graph already,
                // through async-http-client).
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Gateway",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ConveyorCLI",
            dependencies: [
                "ZeroMQ", "ConveyorProtocol", "ConveyorSystem", "ConveyorBroker", "ConveyorConsumer",
                "ConveyorBuiltinTasks", "ConveyorProducer", "ConveyorProcess", "ConveyorTesting", "ConveyorJournal",
                "ConveyorCLIConfig", "ConveyorWorker", "ConveyorMetrics", "ConveyorGateway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Examples, built with the package so they cannot rot.
        // The example app's task definitions, shared by its worker and its producer.
        .target(name: "ExampleTasks", dependencies: ["ConveyorProtocol"], path: "examples/example-tasks", swiftSettings: strict),
        .executableTarget(
            name: "thumbnail-consumer",
            dependencies: ["ConveyorConsumer", "ConveyorWorker", "ExampleTasks"],
            path: "examples/thumbnail-consumer",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "swift-producer",
            dependencies: ["ConveyorProducer", "ConveyorSystem", "ExampleTasks", .product(name: "Logging", package: "swift-log")],
            path: "examples/swift-producer",
            swiftSettings: strict
        ),
        // What the test targets share (a seeded generator, a test instrument); not part of any product.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Instrumentation", package: "swift-distributed-tracing")],
            path: "Tests/Support",
            swiftSettings: strict
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strict),
        .testTarget(
            name: "BrokerTests",
            dependencies: ["ConveyorBroker", "ConveyorJournal", "ConveyorProtocol", "ConveyorSystem", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WebhookTests",
            dependencies: [
                "ConveyorWebhooks", "ConveyorConsumer", "ConveyorProtocol", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MetricsRegistryTests",
            dependencies: ["ConveyorMetrics", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        .testTarget(name: "CLIConfigTests", dependencies: ["ConveyorCLIConfig"], swiftSettings: strict),
        .testTarget(name: "GatewayTests", dependencies: ["ConveyorGateway", "ConveyorProtocol"], swiftSettings: strict),
        .testTarget(name: "ProtocolTests", dependencies: ["ConveyorProtocol", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ScheduleTests", dependencies: ["ConveyorSchedule", "ConveyorProtocol", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "JournalTests",
            dependencies: ["ConveyorJournal", "ConveyorProtocol", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ConsumerTests",
            dependencies: [
                "ConveyorConsumer", "ConveyorBuiltinTasks", "ConveyorProtocol", "ConveyorSystem", "ConveyorProcess", "TestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ConveyorTesting", "ConveyorProducer", "ConveyorProtocol", "ZeroMQ", "ConveyorSystem",
                "ConveyorBroker", "ConveyorProcess", "TestSupport", "ConveyorConsumer", "ExampleTasks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
