import ConveyorProtocol
import ConveyorSystem
public import ConveyorProcess
public import Foundation
public import ConveyorProducer
import Synchronization

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
        /// The broker's CURVE public key, when `brokerArguments` start it with
        /// `--curve-secret-file`: the cluster's producers (``Cluster/makeProducer(configure:)``,
        /// ``Cluster/stats()``) use it.
        public var curveServerKey: [UInt8]?

        public init(consumers: Int = 1, threads: Int = 4, brokerArguments: [String] = [],
                    consumerArguments: [String] = [], executable: URL? = nil, curveServerKey: [UInt8]? = nil) {
            self.curveServerKey = curveServerKey
            self.consumers = consumers
            self.threads = threads
            self.brokerArguments = brokerArguments
            self.consumerArguments = consumerArguments
            self.executable = executable
        }
    }

    public let executable: URL
    private let options: Options
    private let state = Mutex(Processes())
    private let producers = Mutex<[Producer]>([])
    /// The producer `stats()` and `waitForConsumers` ask through, made once.
    private let statsProducer = Mutex<Producer?>(nil)

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
        try startBroker(frontend: "tcp://127.0.0.1:*", backend: "tcp://127.0.0.1:*")
        for _ in 0..<options.consumers {
            try startConsumer(threads: options.threads)
        }
        if options.consumers > 0 {
            try await waitForConsumers(options.consumers)
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
        let broker = try ManagedProcess(
            name: "broker", executable: executable,
            arguments: ["broker", "--frontend", frontend, "--backend", backend] + options.brokerArguments)
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

    /// A producer connected to this cluster's broker; closed at teardown.
    public func makeProducer(configure: (inout ProducerConfiguration) -> Void = { _ in }) throws -> Producer {
        var configuration = ProducerConfiguration(broker: frontend)
        configuration.curveServerKey = options.curveServerKey
        configure(&configuration)
        let producer = try Producer(configuration: configuration)
        producers.withLock { $0.append(producer) }
        return producer
    }

    /// The broker's statistics.
    public func stats() async throws -> BrokerSnapshot {
        let json = try await queryProducer().stats()
        return try JSONDecoder().decode(BrokerSnapshot.self, from: Data(json.bytes))
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
            if let json = try? await producer.stats(),
               let snapshot = try? JSONDecoder().decode(BrokerSnapshot.self, from: Data(json.bytes)),
               snapshot.consumers.count == count {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterError("broker did not see \(count) consumers within \(timeout)")
    }

    /// Stops every process (SIGTERM, then SIGKILL) and closes the producers.
    public func tearDown() {
        for producer in producers.withLock({ $0 }) { producer.close() }
        let (broker, consumers) = state.withLock { ($0.broker, $0.consumers) }
        for consumer in consumers { consumer.send(SIGCONT); consumer.send(SIGTERM) }
        for consumer in consumers { consumer.stop(grace: .seconds(15)) }
        broker?.stop()
    }
}

/// Runs `body` against a fresh cluster and always tears it down.
public func withCluster<T>(_ options: Cluster.Options = .init(), body: (Cluster) async throws -> T) async throws -> T {
    let cluster = try await Cluster(options)
    do {
        let value = try await body(cluster)
        cluster.tearDown()
        return value
    } catch {
        cluster.tearDown()
        throw error
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The parts of the broker's `stats` answer tests look at.
public struct BrokerSnapshot: Decodable, Sendable {
    public struct Consumer: Decodable, Sendable {
        public let pid: Int
        public let threads: Int
        public let capacity: Int
        public let in_flight: Int
        public let free_credit: Int
        public let completed: Int
    }
    public struct Totals: Decodable, Sendable {
        public let submitted: Int
        public let completed: Int
        public let rejected: Int
        public let requeued: Int
        public let duplicates_dropped: Int
        public let bad_messages: Int
    }
    public let queued: [String: Int]
    public let queued_total: Int
    public let running: Int
    public let consumers: [Consumer]
    public let totals: Totals
    public let dead_letter_total: Int
}
