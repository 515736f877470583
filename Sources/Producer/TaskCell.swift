import ConveyorProtocol
import Synchronization

/// Where a task's result lands, shared by the producer's I/O thread and the task's handles.
final class TaskCell: Sendable {
    private struct Inner {
        var result: TaskResult?
        var waiters: [CheckedContinuation<TaskResult, Never>] = []
    }

    private let inner = Mutex(Inner())

    var result: TaskResult? { inner.withLock { $0.result } }

    func complete(_ result: TaskResult) {
        let waiters = inner.withLock { inner -> [CheckedContinuation<TaskResult, Never>] in
            guard inner.result == nil else { return [] }
            inner.result = result
            defer { inner.waiters.removeAll() }
            return inner.waiters
        }
        waiters.forEach { $0.resume(returning: result) }
    }

    /// Completes with `other`'s result once it has one (the same id submitted twice from this
    /// producer is one task).
    func follow(_ other: TaskCell) {
        Task { self.complete(await other.wait()) }
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
}
