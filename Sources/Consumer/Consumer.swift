import ConveyorProtocol
import ConveyorSystem
import Foundation
public import Logging
public import ServiceLifecycle
import ZeroMQ

/// A consumer process's engine, as a swift-service-lifecycle `Service`: ``run()`` starts a
/// ``ThreadPool`` whose worker threads run the handlers, and an I/O thread of its own that owns
/// the DEALER socket to the broker (never one of Swift's cooperative threads). Worker threads
/// never touch the socket; they leave results in outboxes and wake the I/O thread through a pipe
/// it polls.
///
/// Credit: the consumer announces `threads + prefetch` in READY; the broker never sends more
/// tasks than that before results come back. With ``Prefetch/automatic(maximum:buffer:)`` the
/// I/O thread measures the handlers and announces a new capacity when the right one changes.
///
/// Graceful shutdown (of the `ServiceGroup`, or ``stop()``) drains: the consumer takes no more
/// work, hands back what it has not started, finishes what runs (up to
/// ``ConsumerConfiguration/drainTimeout``), returns the results, and leaves the broker.
///
/// ```swift
/// let consumer = Consumer(configuration: configuration, registry: registry, logger: logger)
/// try await ConveyorServices.run([consumer], logger: logger)
/// ```
public final class Consumer: Service, Sendable {
    private let configuration: ConsumerConfiguration
    private let registry: TaskRegistry
    private let logger: Logger
    /// Wakes the I/O thread from its poll: for results, and for a stop.
    private let wakeup = Wakeup()
    private let stopFlag: StopFlag
    private let stopNowFlag: StopFlag
    private let runState = ServiceRunState(service: "consumer")
    private let host = hostName()
    private let pid = Int(getpid())

    /// The exit status of a consumer process replaced because a handler was stuck past the hard limit.
    public static let stuckExitCode: Int32 = 75

    /// Makes a consumer; nothing connects or starts until ``run()``.
    /// - Parameters:
    ///   - configuration: the broker to connect to, threads, prefetch, limits.
    ///   - registry: the task handlers served.
    ///   - logger: where the consumer logs (it never configures logging).
    public init(configuration: ConsumerConfiguration, registry: TaskRegistry, logger: Logger) {
        precondition(configuration.threads > 0, "a consumer needs at least one thread")
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        stopFlag = StopFlag(onSet: { [wakeup] in wakeup.signal() })
        stopNowFlag = StopFlag(onSet: { [wakeup] in wakeup.signal() })
    }

    /// Connects to the broker, announces the consumer, and serves tasks until a graceful shutdown
    /// (or ``stop()``) has drained it; the loop runs on a thread of its own named `conveyor-io`.
    /// Cancelling the calling task drains too.
    ///
    /// - Throws: ``ServiceStateError`` when this consumer runs or has run already;
    ///   ``ProtocolMismatch`` when the broker speaks another protocol version; ``StuckHandler``
    ///   when a handler stayed stuck past the hard limit and ``DrainTimedOut`` when a drain gave
    ///   up on running tasks (after either, the stuck or abandoned worker threads cannot be
    ///   joined: the process should exit, see ``stuckExitCode``); a ZeroMQ error.
    public func run() async throws {
        try runState.begin()
        defer { runState.end() }
        try await runOnDedicatedThread(name: "conveyor-io", stop: stopFlag) { [self] in try serve() }
    }

    /// Drains, as a graceful shutdown does: takes no more work, finishes running tasks and
    /// returns their results, hands back tasks it had not started, then leaves the broker and
    /// ``run()`` returns. Before ``run()``, it makes the run drain at once.
    public func stop() {
        stopFlag.set()
    }

    /// Stops at once (an operator's second Ctrl-C): hands back the tasks it has not started, sends
    /// the results it has, and leaves the broker without waiting for running tasks, which the
    /// broker gives to another consumer (their attempt counts). ``run()`` then throws
    /// ``DrainTimedOut`` (the abandoned threads cannot be joined: exit the process).
    public func stopNow() {
        stopNowFlag.set()
        stopFlag.set()
    }

    /// Whether ``stopNow()`` was called.
    public var isStoppingNow: Bool { stopNowFlag.isSet }

    /// The I/O thread: the pool, the loop, and how the pool ends.
    private func serve() throws {
        let outboxes = ResultOutboxes(threads: configuration.threads, wakeup: wakeup)
        let pool = ThreadPool(threads: configuration.threads)
        do {
            let loop = try ConsumerLoop(configuration: configuration, registry: registry, logger: logger, pool: pool,
                                        outboxes: outboxes, stop: stopFlag, stopNow: stopNowFlag, host: host, pid: pid)
            try loop.run()
        } catch let error as StuckHandler {
            // Joining the pool would wait forever on the stuck thread: leave it to the process exit.
            pool.shutdownWithoutJoining()
            throw error
        } catch let error as DrainTimedOut {
            pool.shutdownWithoutJoining()
            throw error
        } catch {
            logger.error("consumer loop failed", metadata: ["error": "\(error)"])
            pool.shutdown(cancelPending: true)
            throw error
        }
        pool.shutdown(cancelPending: true)
    }
}

extension Consumer {
    /// Thrown by ``run()`` when the broker speaks another protocol version.
    public struct ProtocolMismatch: Error, CustomStringConvertible {
        /// The broker's protocol tag, e.g. `CVY1`.
        public let brokerProtocol: String
        public var description: String {
            "the broker speaks protocol \(brokerProtocol); this consumer speaks \(ProtocolTag.currentText)"
        }
    }

    /// Thrown by ``run()`` when the consumer was given an endpoint that is not a broker's backend:
    /// restarting it would not help (the stock CLI exits with ``misconfiguredExitCode``, which
    /// stops its supervisor too).
    public struct Misconfigured: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// The exit status of a consumer process that cannot work as configured (sysexits' EX_CONFIG).
    public static let misconfiguredExitCode: Int32 = 78

    /// Thrown by ``run()`` when a handler stayed stuck past the hard limit; the process should
    /// exit (with ``stuckExitCode``) rather than join its stuck thread.
    public struct StuckHandler: Error, CustomStringConvertible {
        public let taskID: String
        public let name: String
        public var description: String { "handler for task \(taskID) ('\(name)') is stuck past its hard time limit" }
    }

    /// Thrown by ``run()`` when a drain gave up on tasks still running after the drain timeout;
    /// the process should exit rather than join their threads.
    public struct DrainTimedOut: Error, CustomStringConvertible {
        /// Tasks still running (or their results unsent) when the drain gave up.
        public let abandoned: Int
        public var description: String { "drain timed out with \(abandoned) task(s) still running; the broker requeues them" }
    }
}

func hostName() -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "unknown" }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}
