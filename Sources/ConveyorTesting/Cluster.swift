public import ConveyorProtocol
import ConveyorSystem
public import ConveyorProcess
public import Foundation
public import ConveyorProducer
public import Logging
import Synchronization
public import ZeroMQ

/// A real Conveyor deployment for a test: one broker process and any number of consumer
/// processes, on ports the OS picks. Use ``withCluster(_:body:)`` so it is torn down even when the
/// test fails.
///
/// ```swift
/// try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
///     let producer = try cluster.makeProducer()
///     let handle = try await producer.submit("echo", json: #"{"n": 1}"#)
///     #expect(await handle.result().status == .ok)
/// }
/// ```
///
/// The producers it makes run (their `Service.run()`) in tasks the cluster owns, from
/// ``makeProducer(configure:)`` until ``shutDownProducers()`` (which ``withCluster(_:body:)``
/// awaits) or ``tearDown()``.
public final class Cluster: Sendable {
    public struct Options: Sendable {
        /// Consumer processes started at once, each with `threads` worker threads.
        public var consumers: Int
        public var threads: Int
        /// Extra arguments for `conveyor broker` (e.g. `["--max-queued", "10"]`).
        public var brokerArguments: [String]
        /// Extra arguments for each `conveyor consumer`.
        public var consumerArguments: [String]
        /// The `conveyor` executable; found by ``Cluster/locateExecutable()`` when `nil`.
        public var executable: URL?
        /// A command the broker runs under, which runs the rest of its arguments (e.g.
        /// `["/usr/bin/prlimit", "--nofile=1100:1100"]`); the broker's pid is then its pid.
        public var brokerLauncher: [String] = []
        /// The broker's CURVE public key, when `brokerArguments` start it with
        /// `--curve-secret-file`: the cluster's producers (``Cluster/makeProducer(configure:)``,
        /// ``Cluster/stats()``) use it.
        public var curveServerKey: [UInt8]?
        /// The key pair of the cluster's producers (``Cluster/makeProducer(configure:)``,
        /// ``Cluster/stats()``), for a broker started with `--curve-clients-file`: list its
        /// public key there with the `admin` role (and `submit` for producers that submit).
        public var curveClientKeys: CurveKeyPair?
        /// The logger of the cluster's producers. By default one labelled `conveyor.testing`, which
        /// logs wherever the test process bootstrapped logging (standard error if it did not).
        public var logger: Logger

        public init(consumers: Int = 1, threads: Int = 4, brokerArguments: [String] = [],
                    consumerArguments: [String] = [], executable: URL? = nil, curveServerKey: [UInt8]? = nil,
                    curveClientKeys: CurveKeyPair? = nil, logger: Logger = Logger(label: "conveyor.testing")) {
            self.curveServerKey = curveServerKey
            self.curveClientKeys = curveClientKeys
            self.logger = logger
            self.consumers = consumers
            self.threads = threads
            self.brokerArguments = brokerArguments
            self.consumerArguments = consumerArguments
            self.executable = executable
        }
    }

    public let executable: URL
    private let options: Options
    /// The broker's data directory: a temporary one the cluster made (and removes at teardown),
    /// unless `brokerArguments` name one (`--data-dir`) or ask for `--in-memory` (then `nil`).
    /// A restarted broker (``restartBroker()``) recovers from it.
    public let dataDirectory: String?
    private let ownsDataDirectory: Bool
    private let state = Mutex(Processes())
    private let producers = Mutex<[RunningProducer]>([])
    /// The producer `stats()` and `waitForConsumers` ask through, made once.
    private let statsProducer = Mutex<Producer?>(nil)

    /// A producer and the task that runs its service.
    private struct RunningProducer: Sendable {
        let producer: Producer
        let service: Task<Void, Never>
    }

    private struct Processes: Sendable {
        var broker: ManagedProcess?
        var consumers: [ManagedProcess] = []
        var frontend = ""
        var backend = ""
    }

    /// The broker's frontend endpoint (producers connect here).
    public var frontend: String { state.withLock { $0.frontend } }
    /// The broker's backend endpoint (consumers connect here).
    public var backend: String { state.withLock { $0.backend } }
    public var broker: ManagedProcess? { state.withLock { $0.broker } }
    public var consumers: [ManagedProcess] { state.withLock { $0.consumers } }

    /// Starts the broker, then the consumers, and waits until the broker sees every consumer.
    public init(_ options: Options = .init()) async throws {
        self.options = options
        executable = try options.executable ?? Cluster.locateExecutable()
        let arguments = options.brokerArguments
        if let index = arguments.firstIndex(of: "--data-dir"), index + 1 < arguments.count {
            dataDirectory = arguments[index + 1]
            ownsDataDirectory = false
        } else if arguments.contains("--in-memory") {
            dataDirectory = nil
            ownsDataDirectory = false
        } else {
            dataDirectory = try Cluster.makeTemporaryDirectory()
            ownsDataDirectory = true
        }
        do {
            try startBroker(frontend: "tcp://127.0.0.1:*", backend: "tcp://127.0.0.1:*")
        } catch {
            if ownsDataDirectory, let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
            throw error
        }
        for _ in 0..<options.consumers {
            try startConsumer(threads: options.threads)
        }
        if options.consumers > 0 {
            do {
                try await waitForConsumers(options.consumers)
            } catch {
                await shutDownProducers()
                tearDown()
                throw error
            }
        }
    }

    /// The `conveyor` executable: `$CONVEYOR_BIN`, or the one beside the running program (the
    /// test bundle or `conveyor` itself).
    public static func locateExecutable() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_BIN"] {
            return URL(fileURLWithPath: path)
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if me.lastPathComponent == "conveyor" { return me }
        var directory = me.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("conveyor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw ClusterError("cannot find the conveyor executable beside \(me.path); build it (swift build) or set CONVEYOR_BIN")
    }

    /// Starts (or restarts) the broker on the given endpoints and waits until it has bound them.
    public func startBroker(frontend: String, backend: String) throws {
        let arguments = ["broker", "--frontend", frontend, "--backend", backend] + options.brokerArguments
            + (ownsDataDirectory ? ["--data-dir", dataDirectory!] : [])
        let launcher = options.brokerLauncher
        let broker = try ManagedProcess(
            name: "broker", executable: launcher.first.map { URL(fileURLWithPath: $0) } ?? executable,
            arguments: launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [executable.path] + arguments)
        guard let front = broker.waitForLine(containing: "frontend ", timeout: .seconds(30)),
              let back = broker.waitForLine(containing: "backend ", timeout: .seconds(30))
        else {
            broker.stop()
            throw ClusterError("broker did not start: \(broker.output.joined(separator: "\n"))")
        }
        state.withLock {
            $0.broker = broker
            $0.frontend = String(front.split(separator: " ").last!)
            $0.backend = String(back.split(separator: " ").last!)
        }
    }

    /// Restarts the broker on the same endpoints (after it was stopped or killed).
    public func restartBroker() throws {
        let (frontend, backend) = state.withLock { ($0.frontend, $0.backend) }
        broker?.stop()
        try startBroker(frontend: frontend, backend: backend)
    }

    /// Starts one more `conveyor consumer` process.
    @discardableResult
    public func startConsumer(threads: Int? = nil, processes: Int = 1, arguments: [String] = []) throws -> ManagedProcess {
        let index = state.withLock { $0.consumers.count }
        let consumer = try ManagedProcess(
            name: "consumer\(index)", executable: executable,
            arguments: ["consumer", "--backend", backend, "--threads", "\(threads ?? options.threads)",
                        "--processes", "\(processes)"] + options.consumerArguments + arguments)
        state.withLock { $0.consumers.append(consumer) }
        return consumer
    }

    /// A producer connected to this cluster's broker, its service already started in a task the
    /// cluster owns (calls made before its loop runs wait for it); shut down at teardown.
    public func makeProducer(configure: (inout ProducerConfiguration) -> Void = { _ in }) throws -> Producer {
        var configuration = ProducerConfiguration(broker: frontend)
        configuration.curveServerKey = options.curveServerKey
        configuration.curveClientKeys = options.curveClientKeys
        configure(&configuration)
        let producer = Producer(configuration: configuration, logger: options.logger)
        let logger = options.logger
        let service = Task {
            do {
                try await producer.run()
            } catch {
                logger.error("a test producer failed", metadata: ["error": "\(error)"])
            }
        }
        producers.withLock { $0.append(RunningProducer(producer: producer, service: service)) }
        return producer
    }

    /// The broker's statistics.
    public func stats() async throws -> BrokerStatistics {
        try await queryProducer().stats()
    }

    private func queryProducer() throws -> Producer {
        if let producer = statsProducer.withLock({ $0 }) { return producer }
        let producer = try makeProducer { $0.requestTimeout = .seconds(5) }
        statsProducer.withLock { $0 = producer }
        return producer
    }

    /// Waits until the broker knows `count` consumer processes.
    public func waitForConsumers(_ count: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let producer = try queryProducer()
        while ContinuousClock.now < deadline {
            if let statistics = try? await producer.stats(), statistics.consumers.count == count {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let seen = (try? await producer.stats())?.consumers.count
        throw ClusterError("broker did not see \(count) consumers within \(timeout) (it sees \(seen.map(String.init) ?? "? (no stats answer)"))"
                           + consumerReport())
    }

    /// Each consumer process: running or its exit status, and its last lines; for failure messages.
    func consumerReport() -> String {
        consumers.map { consumer in
            let state = consumer.isRunning ? "running" : "exited with \(consumer.waitForExit(timeout: .zero).map(String.init) ?? "?")"
            let last = consumer.output.suffix(5).map { "\n    " + $0 }.joined()
            return "\n  \(consumer.name) (pid \(consumer.pid)): \(state)\(last)"
        }.joined()
    }

    /// Shuts every producer of the cluster down and waits until their loops have ended. Their
    /// pending calls end as at any producer shutdown.
    public func shutDownProducers() async {
        let running = producers.withLock { $0 }
        for entry in running { entry.producer.beginGracefulShutdown() }
        for entry in running { await entry.service.value }
    }

    /// Stops every process (SIGTERM, then SIGKILL) and tells the producers to shut down, without
    /// waiting for their loops (``shutDownProducers()`` waits; ``withCluster(_:body:)`` calls it).
    public func tearDown() {
        for entry in producers.withLock({ $0 }) { entry.producer.beginGracefulShutdown() }
        let (broker, consumers) = state.withLock { ($0.broker, $0.consumers) }
        for consumer in consumers { consumer.send(SIGCONT); consumer.send(SIGTERM) }
        for consumer in consumers { consumer.stop(grace: .seconds(15), signalled: true) }
        broker?.stop()
        if ownsDataDirectory, let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }

    /// A new empty directory under the system's temporary directory.
    public static func makeTemporaryDirectory(prefix: String = "conveyor-data-") throws -> String {
        var template = Array((URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(prefix + "XXXXXX").path).utf8CString)
        guard let made = mkdtemp(&template) else { throw ClusterError("cannot create a temporary directory") }
        return String(cString: made)
    }
}

/// Runs `body` against a fresh cluster and always tears it down.
public func withCluster<T>(_ options: Cluster.Options = .init(), body: (Cluster) async throws -> T) async throws -> T {
    let cluster = try await Cluster(options)
    do {
        let value = try await body(cluster)
        await cluster.shutDownProducers()
        cluster.tearDown()
        return value
    } catch {
        await cluster.shutDownProducers()
        cluster.tearDown()
        throw error
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
