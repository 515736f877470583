import Foundation
import ServiceLifecycle
import Synchronization

/// A stop request that a blocking loop reads between polls. Set by graceful shutdown, by
/// cancellation of the waiting task, or by the owner's `stop()`.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let onSet: (@Sendable () -> Void)?

    /// - Parameter onSet: called on every ``set()``, after the flag is set, on the caller's
    ///   thread: e.g. to wake the loop from its poll (a `Wakeup`) rather than wait for its timeout.
    public init(onSet: (@Sendable () -> Void)? = nil) { self.onSet = onSet }

    public var isSet: Bool { flag.load(ordering: .acquiring) }

    public func set() {
        flag.store(true, ordering: .releasing)
        onSet?()
    }
}

/// Runs the blocking `body` (a `zmq_poll` loop) on a new OS thread named `name`, and waits for it
/// without holding one of Swift's cooperative threads (two on a 2-core machine: a poll loop there
/// would starve every other task).
///
/// Graceful shutdown of the surrounding `ServiceGroup` and cancellation of the calling task both
/// set `stop`, which `body` must read between polls; the call returns (or rethrows) once `body`
/// has returned, so the loop's sockets are closed before the service counts as finished.
public func runOnDedicatedThread<Value: Sendable>(
    name: String,
    stop: StopFlag,
    _ body: @escaping @Sendable () throws -> Value
) async throws -> Value {
    let finished = OneShot<Result<Value, any Error>>()
    let thread = Thread {
        setCurrentThreadName(name)
        finished.set(Result { try body() })
    }
    thread.start()
    let result = await withGracefulShutdownHandler {
        await withTaskCancellationHandler {
            await finished.wait()
        } onCancel: {
            stop.set()
        }
    } onGracefulShutdown: {
        stop.set()
    }
    return try result.get()
}

/// The lifecycle every Conveyor service goes through once: `idle` → `running` → `finished`.
///
/// - `idle`: can go to `running` (``begin()``).
/// - `running`: can go to `finished` (``end()``).
/// - `finished`: terminal.
///
/// A second `run()` of a service (running or finished) is refused with ``ServiceStateError``
/// instead of building a second set of sockets beside the first.
public final class ServiceRunState: Sendable {
    public enum Phase: Sendable, Equatable { case idle, running, finished }

    private let phase = Mutex(Phase.idle)
    private let service: String

    /// - Parameter service: the service's name, for the error (`"broker"`, `"consumer"`).
    public init(service: String) { self.service = service }

    public var current: Phase { phase.withLock { $0 } }

    /// `idle` → `running`; throws from any other phase.
    public func begin() throws(ServiceStateError) {
        let previous = phase.withLock { phase -> Phase in
            let previous = phase
            if phase == .idle { phase = .running }
            return previous
        }
        switch previous {
        case .idle: return
        case .running: throw ServiceStateError(service: service, reason: "it is already running; a \(service) runs once")
        case .finished: throw ServiceStateError(service: service, reason: "it has already run and finished; make a new one")
        }
    }

    /// `running` → `finished`.
    public func end() { phase.withLock { $0 = .finished } }
}

/// `run()` of a service that is running or has finished.
public struct ServiceStateError: Error, CustomStringConvertible, Equatable {
    public let service: String
    public let reason: String

    public var description: String { "cannot run this \(service): \(reason)" }
}
