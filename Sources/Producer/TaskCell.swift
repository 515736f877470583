import ConveyorProtocol
import ConveyorSystem
import Synchronization

/// Where a task's result lands, shared by the producer's I/O thread and the task's handles.
///
/// Not a ``OneShot``, on purpose: one cell is made per task, at up to ~200,000 tasks a second, and
/// completed from the I/O thread. `OneShot` keeps an `NSCondition` for blocking waiters (one more
/// allocation per task, and a second lock taken on every completion) and has no callbacks, which
/// ``TaskHandle/whenDone(_:)`` needs without a Swift task per result. This cell is one `Mutex`,
/// taken once to complete it, with the first callback stored inline.
final class TaskCell: Sendable {
    private struct Inner {
        var result: TaskResult?
        var waiters: [CheckedContinuation<TaskResult, Never>] = []
        /// The first callback inline (the common case: one), any others in the array.
        var callback: (@Sendable (TaskResult) -> Void)?
        var moreCallbacks: [@Sendable (TaskResult) -> Void] = []
        /// The held task the broker answered with, when a uniqueness key matched one.
        var existingID: String?
    }

    private let inner = Mutex(Inner())

    var result: TaskResult? { inner.withLock { $0.result } }

    /// The id of the task the broker answered with instead of making this one (a `unique_key`
    /// held by it), once the broker said so.
    var existingID: String? {
        get { inner.withLock { $0.existingID } }
        set { inner.withLock { $0.existingID = newValue } }
    }

    /// Stores the result (the first one wins), resumes the waiters and runs the callbacks.
    func complete(_ result: TaskResult) {
        let (waiters, callback, moreCallbacks) = inner.withLock {
            inner -> ([CheckedContinuation<TaskResult, Never>], (@Sendable (TaskResult) -> Void)?, [@Sendable (TaskResult) -> Void]) in
            guard inner.result == nil else { return ([], nil, []) }
            inner.result = result
            defer {
                inner.waiters = []
                inner.callback = nil
                inner.moreCallbacks = []
            }
            return (inner.waiters, inner.callback, inner.moreCallbacks)
        }
        waiters.forEach { $0.resume(returning: result) }
        callback?(result)
        moreCallbacks.forEach { $0(result) }
    }

    func wait() async -> TaskResult {
        await withCheckedContinuation { continuation in
            let known = inner.withLock { inner -> TaskResult? in
                if let result = inner.result { return result }
                inner.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    /// Runs `body` with the result: now, on the caller's thread, if it is known; otherwise on the
    /// thread that completes the cell.
    func whenDone(_ body: @escaping @Sendable (TaskResult) -> Void) {
        let known = inner.withLock { inner -> TaskResult? in
            if let result = inner.result { return result }
            if inner.callback == nil { inner.callback = body } else { inner.moreCallbacks.append(body) }
            return nil
        }
        if let known { body(known) }
    }
}
