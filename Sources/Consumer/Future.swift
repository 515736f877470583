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
public final class Future<T: Sendable>: Sendable {
    private enum State {
        case pending
        case running
        case finished(Result<T, any Error>)
    }

    private struct Inner {
        var state = State.pending
        var waiters: [DispatchSemaphore] = []
        var callbacks: [@Sendable (Result<T, any Error>) -> Void] = []
    }

    private let inner = Mutex(Inner())

    init() {}

    /// Whether the work finished, failed or was cancelled.
    public var isDone: Bool {
        inner.withLock { if case .finished = $0.state { true } else { false } }
    }

    /// Whether the work is running now.
    public var isRunning: Bool {
        inner.withLock { if case .running = $0.state { true } else { false } }
    }

    /// Whether the work was cancelled before it started.
    public var isCancelled: Bool {
        inner.withLock {
            if case .finished(.failure(let error)) = $0.state, error as? FutureError == .cancelled { true } else { false }
        }
    }

    /// Cancels the work if it has not started. A running or finished future cannot be cancelled.
    /// - Returns: whether the work is now cancelled.
    @discardableResult
    public func cancel() -> Bool {
        // pending → cancelled in one critical section, so a worker's markRunning() cannot slip in
        // between the check and the change.
        let (cancelled, waiters, callbacks) = inner.withLock { inner -> (Bool, [DispatchSemaphore], [@Sendable (Result<T, any Error>) -> Void]) in
            switch inner.state {
            case .pending:
                inner.state = .finished(.failure(FutureError.cancelled))
                defer {
                    inner.waiters.removeAll()
                    inner.callbacks.removeAll()
                }
                return (true, inner.waiters, inner.callbacks)
            case .finished(.failure(let error)) where error as? FutureError == .cancelled:
                return (true, [], [])
            default:
                return (false, [], [])
            }
        }
        waiters.forEach { $0.signal() }
        callbacks.forEach { $0(.failure(FutureError.cancelled)) }
        return cancelled
    }

    /// Waits for the outcome; `nil` waits as long as it takes.
    /// - Throws: the work's error, ``FutureError/cancelled``, or ``FutureError/timedOut``.
    public func result(timeout: Duration? = nil) throws -> T {
        let semaphore: DispatchSemaphore? = inner.withLock {
            if case .finished = $0.state { return nil }
            let semaphore = DispatchSemaphore(value: 0)
            $0.waiters.append(semaphore)
            return semaphore
        }
        if let semaphore {
            if let timeout {
                let (seconds, attoseconds) = timeout.components
                // Clamped to about 30 years, so that a huge timeout cannot overflow.
                let nanos = Int(clamping: min(max(seconds, 0), 1_000_000_000)) * 1_000_000_000
                    + Int(max(attoseconds, 0) / 1_000_000_000)
                if semaphore.wait(timeout: .now() + .nanoseconds(nanos)) == .timedOut {
                    throw FutureError.timedOut
                }
            } else {
                semaphore.wait()
            }
        }
        return try inner.withLock { state -> Result<T, any Error> in
            guard case .finished(let result) = state.state else { fatalError("future woken before finishing") }
            return result
        }.get()
    }

    /// The outcome, awaited without blocking a thread.
    public var value: T {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                whenDone { continuation.resume(with: $0) }
            }
        }
    }

    /// Calls `callback` once with the outcome (at once if it is already known).
    public func whenDone(_ callback: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let known: Result<T, any Error>? = inner.withLock {
            if case .finished(let result) = $0.state { return result }
            $0.callbacks.append(callback)
            return nil
        }
        if let known { callback(known) }
    }

    /// Moves pending → running; false when the future was cancelled first.
    func markRunning() -> Bool {
        inner.withLock {
            guard case .pending = $0.state else { return false }
            $0.state = .running
            return true
        }
    }

    func complete(_ result: Result<T, any Error>) {
        let (waiters, callbacks) = inner.withLock { inner -> ([DispatchSemaphore], [@Sendable (Result<T, any Error>) -> Void]) in
            if case .finished = inner.state { return ([], []) }
            inner.state = .finished(result)
            defer {
                inner.waiters.removeAll()
                inner.callbacks.removeAll()
            }
            return (inner.waiters, inner.callbacks)
        }
        waiters.forEach { $0.signal() }
        callbacks.forEach { $0(result) }
    }
}
