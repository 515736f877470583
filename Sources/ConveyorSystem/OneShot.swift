import Foundation
import Synchronization

/// A value set once and read by any number of waiters, blocking or `async`: the one latch of the
/// package (task results, bound endpoints, a thread's end).
///
/// States: `pending(waiters)` → `done(value)`. ``set(_:)`` moves pending to done and resumes every
/// waiter outside the lock; a second ``set(_:)`` is refused (returns `false`) and changes nothing.
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case pending([Waiter])
        case done(Value)
    }

    /// Who waits without blocking: an `async` waiter, or a callback.
    private enum Waiter {
        case continuation(CheckedContinuation<Value, Never>)
        case callback(@Sendable (Value) -> Void)
    }

    private let state = Mutex(State.pending([]))
    /// For blocking waiters only; `async` waiters never touch it.
    private let condition = NSCondition()

    public init() {}

    /// Sets the value once. Returns `false`, doing nothing, when it was already set.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        let waiters: [Waiter]? = state.withLock { state in
            guard case .pending(let waiting) = state else { return nil }
            state = .done(value)
            return waiting
        }
        guard let waiters else { return false }
        // Resumed and called outside the lock: a waiter may run at once on this thread.
        for waiter in waiters {
            switch waiter {
            case .continuation(let continuation): continuation.resume(returning: value)
            case .callback(let callback): callback(value)
            }
        }
        condition.lock()
        condition.broadcast()
        condition.unlock()
        return true
    }

    /// The value, if it was set.
    public var value: Value? {
        state.withLock { state in
            if case .done(let value) = state { return value }
            return nil
        }
    }

    /// Waits for the value without blocking a thread.
    public func wait() async -> Value {
        await withCheckedContinuation { continuation in
            let ready: Value? = state.withLock { state in
                switch state {
                case .pending(var waiting):
                    waiting.append(.continuation(continuation))
                    state = .pending(waiting)
                    return nil
                case .done(let value):
                    return value
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Calls `callback` once with the value: at once on this thread if it is set, else on the
    /// thread that sets it (so it should be short and must not block).
    public func whenSet(_ callback: @escaping @Sendable (Value) -> Void) {
        let ready: Value? = state.withLock { state in
            switch state {
            case .pending(var waiting):
                waiting.append(.callback(callback))
                state = .pending(waiting)
                return nil
            case .done(let value):
                return value
            }
        }
        if let ready { callback(ready) }
    }

    /// Blocks the calling thread until the value is set or `timeout` passes (`nil`: for ever).
    /// For threads of their own only, never from Swift's cooperative pool.
    public func waitBlocking(timeout: Duration? = nil) -> Value? {
        let limit = timeout.map { Date().addingTimeInterval($0.seconds) }
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let value { return value }
            if let limit {
                if !condition.wait(until: limit) { return self.value }
            } else {
                condition.wait()
            }
        }
    }
}
