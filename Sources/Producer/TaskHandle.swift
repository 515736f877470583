public import ConveyorProtocol
import ConveyorSystem
import Foundation

/// A submitted task, in the spirit of `concurrent.futures.Future`: ``isDone``, ``cancel()``
/// (queued tasks only: a running task cannot be cancelled), ``status()`` and ``result()``.
public struct TaskHandle: Sendable {
    /// The id submitted.
    public let id: String
    let producer: Producer
    let cell: TaskCell

    /// When the task's ``TaskOptions/uniqueKey`` was held by another task of its name: that
    /// task's id (the broker made no new task, and this handle gets that task's result); `nil`
    /// otherwise. Known once the submit returned (or the result came).
    public var existingID: String? { cell.existingID }

    /// The id the broker knows the task by: ``existingID`` when there is one, else ``id``.
    /// ``cancel()`` and ``status()`` ask about it.
    public var taskID: String { cell.existingID ?? id }

    /// Whether the task's result has arrived.
    public var isDone: Bool { cell.result != nil }

    /// Asks the broker to cancel the task. Only a queued task can be cancelled.
    public func cancel() async throws -> CancelOutcome { try await producer.cancel(id: taskID) }

    /// Asks the broker where the task stands.
    public func status() async throws -> TaskStatusReport { try await producer.status(id: taskID) }

    /// Waits for the task's result, whatever its status. It always comes: from the broker, or as
    /// a `timeout` made here when the broker stays silent past the task's timeout.
    public func result() async -> TaskResult { await cell.wait() }

    /// Calls `body` with the task's result once it is known, without a waiting Swift task: at
    /// once if the result is already here, otherwise on the producer's I/O thread as the result
    /// arrives (or on the thread that shuts the producer down, with the `error` result that ends
    /// it). `body` must be quick and must not block, since it holds up every other result; hand
    /// longer work to another thread or task.
    public func whenDone(_ body: @escaping @Sendable (TaskResult) -> Void) { cell.whenDone(body) }

    /// Waits for the result and decodes it; throws ``ProducerError/taskFailed(_:)`` unless the
    /// task succeeded.
    public func result<T: Decodable>(as type: T.Type) async throws -> T {
        let result = await result()
        guard result.status == .ok else { throw ProducerError.taskFailed(result) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(result.body.bytes))
        } catch {
            throw ProducerError.undecodableResult("result of task \(id) does not decode to \(T.self): \(error)")
        }
    }
}
