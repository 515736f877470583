import ConveyorSystem
import Foundation
import Synchronization

/// Why a future has no value.
public enum FutureError: Error, Equatable, CustomStringConvertible {
    /// The work was cancelled before it started.
    case cancelled
    /// `result(timeout:)` waited its whole timeout.
    case timedOut

    public var description: String {
        switch self {
        case .cancelled: "the work was cancelled before it started"
        case .timedOut: "the work did not finish within the timeout"
        }
    }
}

/// The eventual outcome of work submitted to a ``ThreadPool``, like
/// `concurrent.futures.Future`: ``isDone``, ``cancel()`` (only before the work starts),
/// ``result(timeout:)`` and ``value``.
///
/// Its phase is `pending` → `running` → `finished`, or `pending` → `cancelled`; the outcome is a
/// ``OneShot`` (the package's one latch), set once when the phase becomes `finished` or `cancelled`.
public final class Future<T: Sendable>: Sendable {
    private enum Phase {
        /// Allows: ``markRunning()`` → `running`; ``cancel()`` → `cancelled`.
        case pending
        /// Allows: ``complete(_:)`` → `finished`.
        case running
        /// Terminal.
        case finished
        /// Terminal.
        case cancelled
    }

    private let phase = Mutex(Phase.pending)
    private let outcome = OneShot<Result<T, any Error>>()

    init() {}

    /// Whether the work finished, failed or was cancelled.
    public var isDone: Bool {
        phase.withLock { $0 == .finished || $0 == .cancelled }
    }

    /// Whether the work is running now.
    public var isRunning: Bool {
        phase.withLock { $0 == .running }
    }

    /// Whether the work was cancelled before it started.
    public var isCancelled: Bool {
        phase.withLock { $0 == .cancelled }
    }

    /// Cancels the work if it has not started. A running or finished future cannot be cancelled.
    /// - Returns: whether the work is now cancelled.
    @discardableResult
    public func cancel() -> Bool {
        // pending → cancelled in one critical section, so a worker's markRunning() cannot slip in
        // between the check and the change.
        let (cancelled, changed) = phase.withLock { phase -> (Bool, Bool) in
            switch phase {
            case .pending:
                phase = .cancelled
                return (true, true)
            case .cancelled:
                return (true, false)
            case .running, .finished:
                return (false, false)
            }
        }
        if changed { outcome.set(.failure(FutureError.cancelled)) }
        return cancelled
    }

    /// Waits for the outcome; `nil` waits as long as it takes.
    /// - Throws: the work's error, ``FutureError/cancelled``, or ``FutureError/timedOut``.
    public func result(timeout: Duration? = nil) throws -> T {
        guard let result = outcome.waitBlocking(timeout: timeout) else { throw FutureError.timedOut }
        return try result.get()
    }

    /// The outcome, awaited without blocking a thread.
    public var value: T {
        get async throws { try await outcome.wait().get() }
    }

    /// Calls `callback` once with the outcome (at once if it is already known, else on the thread
    /// that finishes or cancels the work).
    public func whenDone(_ callback: @escaping @Sendable (Result<T, any Error>) -> Void) {
        outcome.whenSet(callback)
    }

    /// Moves pending → running; false when the future was cancelled first.
    func markRunning() -> Bool {
        phase.withLock {
            guard $0 == .pending else { return false }
            $0 = .running
            return true
        }
    }

    /// Moves running → finished with `result`; ignored in any other phase.
    func complete(_ result: Result<T, any Error>) {
        let completed = phase.withLock {
            guard $0 == .running else { return false }
            $0 = .finished
            return true
        }
        if completed { outcome.set(result) }
    }
}
