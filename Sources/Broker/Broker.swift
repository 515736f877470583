import ConveyorJournal
import ConveyorProtocol
import ConveyorSystem
public import Logging
public import ServiceLifecycle
import ZeroMQ

/// The endpoints a broker actually bound (wildcard ports resolved).
public struct BoundEndpoints: Sendable, Equatable {
    public let frontend: String
    public let backend: String
}

/// A Conveyor broker as a swift-service-lifecycle `Service`: a ROUTER for producers (the
/// frontend), a ROUTER for consumers (the backend), and one OS thread of its own between them
/// that owns both sockets and all task state (never a thread of Swift's cooperative pool).
///
/// ```swift
/// let broker = Broker(configuration: config, logger: logger)
/// let group = ServiceGroup(services: [broker], logger: logger)
/// async let running: Void = group.run()
/// let endpoints = try await broker.endpoints()   // once bound
/// // ...
/// await group.triggerGracefulShutdown()          // tells its peers, then returns from run()
/// ```
///
/// `run()` runs once: a second call, while running or after, throws ``ServiceStateError``.
public final class Broker: Service, Sendable {
    private let configuration: BrokerConfiguration
    private let logger: Logger
    private let runState = ServiceRunState(service: "broker")
    private let stopFlag = StopFlag()
    private let urgentFlag = StopFlag()
    private let bound = OneShot<Result<BoundEndpoints, BrokerStartError>>()
    /// The clients file in force, when clients are authenticated; replaced by
    /// ``reloadClientAllowList()``.
    private let allowList: AllowListHolder?

    public init(configuration: BrokerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        allowList = configuration.clientAllowList.map(AllowListHolder.init)
    }

    /// Binds both sockets and serves until graceful shutdown (or cancellation, or ``stop()``),
    /// then tells consumers and producers it is going away. Throws the bind error (address in
    /// use, bad endpoint) or what ended the loop.
    public func run() async throws {
        try runState.begin()
        defer { runState.end() }
        let (configuration, logger, stop, bound, urgent) = (self.configuration, self.logger, self.stopFlag, self.bound, self.urgentFlag)
        let allowList = self.allowList
        try await runOnDedicatedThread(name: "conveyor-broker", stop: stop) {
            let context: Context
            let guardian: BrokerGuard
            let counters: ConnectionCounters
            do {
                guard allowList == nil || configuration.curveSecretKey != nil else {
                    throw BrokerStartError(underlying: "a clients file needs a CURVE secret key: client keys are checked in the CURVE handshake")
                }
                context = try Context()
                let fileLimit = ConnectionGate.fileLimit
                counters = ConnectionCounters(limit: ConnectionGate.effectiveLimit(requested: configuration.maxConnections, fileLimit: fileLimit))
                if counters.limit < configuration.maxConnections {
                    logger.notice("connections capped below --max-connections by the open-files limit", metadata: [
                        "connections.cap": "\(counters.limit)", "max_connections": "\(configuration.maxConnections)",
                        "open_files_limit": "\(fileLimit)", "reserve": "\(ConnectionGate.descriptorReserve)",
                    ])
                }
                guardian = try BrokerGuard.start(context: context, allowList: allowList, counters: counters,
                                                 fileLimit: fileLimit, logger: logger)
            } catch {
                bound.set(.failure(BrokerStartError(underlying: "\(error)")))
                throw error
            }
            // After the loop (and with it the broker's sockets) is gone: no handshake is left
            // unanswered while a socket is open.
            defer { guardian.stopAndWait() }
            try Self.serve(configuration: configuration, logger: logger, context: context, guardian: guardian,
                           counters: counters, bound: bound, stop: stop, urgent: urgent)
        }
    }

    /// Makes the loop, binds, serves until stopped; the loop and its sockets are released on return.
    private static func serve(configuration: BrokerConfiguration, logger: Logger, context: Context, guardian: BrokerGuard,
                              counters: ConnectionCounters, bound: OneShot<Result<BoundEndpoints, BrokerStartError>>,
                              stop: StopFlag, urgent: StopFlag) throws {
        let loop: BrokerLoop
        do {
            let wakeup = Wakeup()
            let recovered = try configuration.journal.map { journal throws(JournalError) in
                try Self.openJournal(journal, logger: logger, wakeup: wakeup)
            }
            loop = try BrokerLoop(config: configuration, logger: logger, context: context,
                                  journal: recovered?.journal, wakeup: wakeup, guardian: guardian, connections: counters)
            if let recovered { loop.restore(recovered.state) }
            bound.set(.success(try loop.endpoints))
        } catch {
            bound.set(.failure(BrokerStartError(underlying: "\(error)")))
            throw error
        }
        do {
            try loop.run(stop: stop, urgent: urgent)
        } catch {
            logger.error("broker loop failed", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Reads the clients file again (``BrokerConfiguration/clientAllowList``'s source): the
    /// new list applies to every connection from now on (a removed key is refused at its next
    /// handshake; connections made before keep what they had). On any problem the file is not
    /// used, the list in force stays, and the error says the line. Logs either way.
    @discardableResult
    public func reloadClientAllowList() throws(AllowListError) -> AllowList {
        guard let allowList, let path = allowList.current.source else {
            throw AllowListError(file: nil, line: nil, problem: "this broker was not started with a clients file")
        }
        do {
            let list = try AllowList.load(path: path)
            allowList.replace(with: list)
            logger.notice("clients file reloaded", metadata: ["file": "\(path)", "keys": "\(list.count)"])
            return list
        } catch {
            logger.error("clients file not reloaded; the previous list stays in force", metadata: [
                "error": "\(error)", "keys": "\(allowList.current.count)",
            ])
            throw error
        }
    }

    /// Locks and replays the data directory, and says what it found.
    private static func openJournal(_ configuration: JournalConfiguration, logger: Logger, wakeup: Wakeup)
        throws(JournalError) -> (journal: Journal, state: RecoveredState) {
        let started = monotonicNanoseconds()
        let (journal, state, report) = try Journal.open(configuration, logger: logger) { wakeup.signalIfWaiting() }
        for dropped in report.dropped { logger.warning("journal: \(dropped)") }
        let counts = state.counts
        logger.info("journal recovered", metadata: [
            "data_dir": "\(configuration.directory)", "fsync": "\(configuration.fsync)",
            "records": "\(report.records)", "bytes": "\(report.bytes)",
            "tasks.queued": "\(counts.queued + counts.running)", "tasks.delayed": "\(counts.delayed)",
            "results": "\(counts.done)", "dead_letters": "\(state.deadLetters.count)",
            "ms": "\((monotonicNanoseconds() - started) / 1_000_000)",
        ])
        return (journal, state)
    }

    /// The endpoints bound, once ``run()`` has bound them; throws if binding failed.
    public func endpoints() async throws(BrokerStartError) -> BoundEndpoints {
        try await bound.wait().get()
    }

    /// Asks a running broker to stop, as a graceful shutdown does: it takes no new tasks, waits up
    /// to ``BrokerConfiguration/drainTimeout`` for the running ones, then says goodbye.
    public func stop() {
        stopFlag.set()
    }

    /// Stops at once, without waiting for running tasks (a second SIGTERM): they are requeued
    /// at the next start from the journal, or, in memory, resubmitted by their producers.
    public func stopNow() {
        urgentFlag.set()
        stopFlag.set()
    }
}

/// The broker could not start: its sockets could not be made or bound.
public struct BrokerStartError: Error, CustomStringConvertible, Sendable {
    /// The cause, as libzmq said it ("bind tcp://127.0.0.1:5555: Address already in use").
    public let underlying: String
    public var description: String { underlying }
}
