import ConveyorSystem
import Foundation
public import Logging
import Synchronization
public import ServiceLifecycle
import Subprocess

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `count` child processes and keeps them running, as a swift-service-lifecycle `Service`
/// on swift-subprocess: a child that ends is restarted after a backoff (1 s, doubling to 30 s;
/// back to 1 s once a child has lived a minute). `conveyor consumer --processes P` runs P
/// consumer processes under one.
///
/// Graceful shutdown (or cancellation) tears every child down with swift-subprocess's sequence:
/// SIGTERM (a consumer drains), then SIGKILL for a child still there after
/// ``Configuration/shutdownGrace``, so that the supervisor never waits for ever on a child that
/// ignores SIGTERM. ``run()`` returns once every child has ended.
///
/// The children inherit this process's standard output and error; their standard input is empty.
public final class Supervisor: Service, Sendable {
    /// What to run and how to keep it running.
    public struct Configuration: Sendable {
        /// The executable's absolute path (``Supervisor/currentExecutablePath()`` for this same program).
        public var executable: String
        /// Child processes, indexed from 0.
        public var count: Int
        /// The arguments of child `index` (not including the executable).
        public var arguments: @Sendable (_ index: Int) -> [String]
        /// How long a child may take to end after SIGTERM before it gets SIGKILL (a consumer's
        /// drain timeout, plus a margin).
        public var shutdownGrace: Duration
        /// The first restart delay; it doubles on each quick death, up to `maximumBackoff`.
        public var initialBackoff: Duration = .seconds(1)
        /// The longest restart delay.
        public var maximumBackoff: Duration = .seconds(30)
        /// A child that lived this long is restarted after `initialBackoff` again.
        public var healthyAfter: Duration = .seconds(60)
        /// A child that exits with this status is not restarted, and the supervisor stops (its
        /// other children with it) and throws ``ChildMisconfigured``: a configuration that
        /// cannot work (the consumer's 78) fails the same way however often it is restarted.
        public var stopStatus: Int32?

        /// The defaults restart after 1 s, doubling to 30 s, back to 1 s after a minute's life.
        public init(executable: String, count: Int, shutdownGrace: Duration,
                    arguments: @escaping @Sendable (_ index: Int) -> [String]) {
            self.executable = executable
            self.count = count
            self.shutdownGrace = shutdownGrace
            self.arguments = arguments
        }
    }

    private let configuration: Configuration
    private let logger: Logger
    private let runState = ServiceRunState(service: "supervisor")
    private let misconfigured = Mutex<Int32?>(nil)
    /// The pid of each running child, by index: for ``signalChildren(_:)``.
    private let children = Mutex<[Int: pid_t]>([:])
    private let restartCount = Atomic<Int>(0)

    /// Children restarted since the supervisor started (each end of a child it started again).
    public var restarts: Int { restartCount.load(ordering: .relaxed) }
    /// Children running now.
    public var running: Int { children.withLock { $0.count } }

    /// - Parameters:
    ///   - configuration: what to run; `count` must be at least 1.
    ///   - logger: where the supervisor logs (it never configures logging).
    public init(configuration: Configuration, logger: Logger) {
        precondition(configuration.count > 0, "a supervisor needs at least one child")
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the children and restarts any that ends, until a graceful shutdown or cancellation;
    /// then tears them down (SIGTERM, SIGKILL after ``Configuration/shutdownGrace``) and returns
    /// once all have ended.
    /// - Throws: ``ServiceStateError`` when this supervisor runs or has run already.
    public func run() async throws {
        try runState.begin()
        defer { runState.end() }
        await cancelWhenGracefulShutdown { [self] in
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Int32?.self) { group in
                    for index in 0..<configuration.count {
                        group.addTask { await self.keepRunning(index) }
                    }
                    // A child that cannot work as configured stops them all: restarting it
                    // would fail the same way, forever.
                    for await status in group where status != nil {
                        misconfigured.withLock { $0 = status }
                        group.cancelAll()
                    }
                }
            } onGracefulShutdown: { [logger, configuration] in
                logger.info("supervisor stopping; children draining", metadata: ["children": "\(configuration.count)"])
            }
        }
        logger.info("supervisor stopped")
        if let status = misconfigured.withLock({ $0 }) { throw ChildMisconfigured(status: status) }
    }

    /// Sends `signal` to every running child: a second SIGTERM after the first (which the
    /// teardown sends) asks a consumer to stop at once rather than drain.
    public func signalChildren(_ signal: Int32) {
        for pid in children.withLock({ Array($0.values) }) { _ = kill(pid, signal) }
    }

    /// Thrown by ``run()`` when a child exited with ``Configuration/stopStatus``.
    public struct ChildMisconfigured: Error, CustomStringConvertible {
        public let status: Int32
        public var description: String { "a supervised process exited with status \(status) (it cannot work as configured: see its error above); not restarting it" }
    }

    /// Runs child `index` again and again until the task is cancelled, or until it exits with
    /// ``Configuration/stopStatus`` (returned).
    private func keepRunning(_ index: Int) async -> Int32? {
        var options = PlatformOptions()
        // Run when the task is cancelled while the child runs; always ends with SIGKILL.
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: configuration.shutdownGrace)]
        // A process group of its own: a terminal's Ctrl-C reaches the supervisor only, which
        // passes it on (SIGTERM: drain; a second one: stop at once) instead of each child taking
        // the terminal's signal and the supervisor's besides.
        options.processGroupID = 0
        var backoff: Duration?
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let status: String
            do {
                let result = try await Subprocess.run(
                    .path(.init(configuration.executable)), arguments: Arguments(configuration.arguments(index)),
                    platformOptions: options, input: .none, output: .currentStandardOutput, error: .currentStandardError
                ) { [logger, self] execution in
                    // Until the run returns, after the child has exited (below).
                    self.children.withLock { $0[index] = execution.processIdentifier.value }
                    logger.info("supervised process started", metadata: [
                        "process": "\(index)", "consumer.pid": "\(execution.processIdentifier.value)",
                    ])
                }
                children.withLock { $0[index] = nil }
                status = "\(result.terminationStatus)"
                if let stop = configuration.stopStatus, case .exited(let code) = result.terminationStatus, code == stop {
                    logger.error("supervised process cannot work as configured; stopping", metadata: [
                        "process": "\(index)", "status": "\(code)",
                    ])
                    return code
                }
            } catch {
                children.withLock { $0[index] = nil }
                if Task.isCancelled { break }
                logger.error("could not start supervised process", metadata: ["process": "\(index)", "error": "\(error)"])
                status = "not started"
            }
            if Task.isCancelled { break }
            let lived = started.duration(to: .now)
            let delay = lived >= configuration.healthyAfter || backoff == nil
                ? configuration.initialBackoff
                : min(backoff! * 2, configuration.maximumBackoff)
            backoff = delay
            restartCount.add(1, ordering: .relaxed)
            logger.warning("supervised process ended; restarting", metadata: [
                "process": "\(index)", "status": "\(status)", "restart.delay_ms": "\(delay.milliseconds)",
            ])
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        return nil
    }

    /// `arguments` without the options named in `options` and their values (as `--name value`
    /// or `--name=value`): a child's arguments made from its parent's own, so that no option has
    /// to be passed on one by one.
    public static func arguments(_ arguments: [String], removing options: Set<String>) -> [String] {
        var result: [String] = []
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if options.contains(argument) {
                _ = iterator.next()
            } else if let equals = argument.firstIndex(of: "="), options.contains(String(argument[..<equals])) {
                continue
            } else {
                result.append(argument)
            }
        }
        return result
    }

    /// The absolute path of the running executable, for a supervisor of this same program.
    public static func currentExecutablePath() -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}

/// The child's half of supervision, as a `Service`: looks every `interval` whether the process
/// that started this one is still its parent, and calls `onOrphaned` once it is not (the
/// supervisor ended, even by SIGKILL), so that a supervised consumer drains and exits rather than
/// run on as an orphan. Then it waits for the group's graceful shutdown.
public struct ParentProcessWatch: Service {
    private let interval: Duration
    private let logger: Logger
    private let onOrphaned: @Sendable () -> Void

    /// - Parameters:
    ///   - onOrphaned: what to do when the parent is gone, e.g. start the graceful shutdown of
    ///     this process's services (`conveyor consumer` raises SIGTERM, which its
    ///     `ConveyorServices` group turns into one).
    public init(interval: Duration = .seconds(1), logger: Logger, onOrphaned: @escaping @Sendable () -> Void) {
        self.interval = interval
        self.logger = logger
        self.onOrphaned = onOrphaned
    }

    /// Watches until the parent is gone (then calls `onOrphaned` and waits for the graceful
    /// shutdown), or until a graceful shutdown or cancellation; never throws.
    public func run() async throws {
        let parent = getppid()
        try? await cancelWhenGracefulShutdown { [interval, logger, onOrphaned] in
            while getppid() == parent {
                try await Task.sleep(for: interval)
            }
            logger.warning("parent process gone; shutting down", metadata: ["parent.pid": "\(parent)"])
            onOrphaned()
            try await gracefulShutdown()
        }
    }
}
