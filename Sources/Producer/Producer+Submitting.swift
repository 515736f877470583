public import ConveyorProtocol
import ConveyorSystem
import Foundation

extension Producer {
    // MARK: Submitting tasks

    /// Submits a task whose args are JSON text. Waits for a window slot, then for the broker to
    /// accept the task.
    /// - Parameter id: the task id; a new one by default. Submitting an id again is safe: the
    ///   broker treats it as the same task, and while it is in flight from this producer the
    ///   same handle comes back.
    /// - Throws: ``ProducerError/rejected(id:reason:)``, ``ProducerError/brokerTimeout(endpoint:waited:)``,
    ///   ``ProducerError/protocolError(_:)`` (a broker of another protocol version),
    ///   ``ProducerError/closed``.
    public func submit(_ name: String, json args: RawJSON, options: TaskOptions = .default,
                       id: String? = nil) async throws -> TaskHandle {
        try await submit([TaskSubmission(name, json: args, options: options, id: id)], throwingTaskErrors: true)[0]
    }

    /// Submits a task whose args are JSON text (see ``submit(_:json:options:id:)``).
    public func submit(_ name: String, json: String, options: TaskOptions = .default,
                       id: String? = nil) async throws -> TaskHandle {
        try await submit(name, json: RawJSON(json), options: options, id: id)
    }

    /// Submits a task whose args are any `Encodable` value, encoded with sorted keys.
    public func submit<Args: Encodable>(_ name: String, _ args: Args, options: TaskOptions = .default,
                                         id: String? = nil) async throws -> TaskHandle {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try await submit(name, json: RawJSON(bytes: Array(try encoder.encode(args))), options: options, id: id)
    }

    /// Submits many tasks at once: one lock, one wake-up of the I/O thread and one wait for the
    /// broker's answers per window's worth, instead of one each. Waits for window slots (a batch
    /// larger than the window goes in window-sized parts), then until the broker has answered every
    /// task. Handles come back in the order of `tasks`.
    ///
    /// Unlike ``submit(_:json:options:id:)`` this does not throw for one task's
    /// refusal: a task the broker rejects, or does not answer within the request timeout, gets a
    /// `rejected` or `timeout` result in its handle, so the handles of the others are not lost.
    /// - Throws: ``ProducerError/closed`` only.
    public func submit(batch tasks: [TaskSubmission]) async throws -> [TaskHandle] {
        try await submit(tasks, throwingTaskErrors: false)
    }

    /// Submits many tasks without waiting for their results ("fire and forget"): returns once the
    /// broker has answered every task, with one ``TaskReceipt`` per task in the order of `tasks`,
    /// saying whether the broker accepted it. Batched and windowed as ``submit(batch:)``.
    ///
    /// The producer forgets a task as soon as the broker accepts it: its window slot is free at
    /// once, rather than when its result comes (so a batch larger than the window goes through
    /// with no consumer running), it is not submitted again if the connection is re-established,
    /// and its result, should the broker send it, is dropped. Shutting the producer down afterwards
    /// leaves the tasks queued in the broker; ask the broker about one by id (``status(id:)``).
    /// An id in flight from this producer already (from an earlier call) is that task, and stays
    /// that call's: its receipt here says accepted, whatever the broker answers the earlier call.
    /// - Throws: ``ProducerError/closed`` only.
    public func submitDetached(batch tasks: [TaskSubmission]) async throws -> [TaskReceipt] {
        let group = AcceptGroup(throwsTaskErrors: false)
        let handles = try await enqueue(tasks, group: group, detached: true)
        table.withLock { $0.seal(group) }.perform()
        if let error = await group.answered.wait() { throw error }
        // The group is complete: no one writes its refusals any more.
        let refusals = group.refusals
        return handles.map { TaskReceipt(id: $0.taskID, refusal: refusals[$0.id]) }
    }

    // MARK: Round trips

    /// Submits a task and waits for its result, with one suspension instead of two (the
    /// broker's acceptance wakes no one): the shortest round trip, for request/response use.
    /// A refused task, or one the broker does not answer, comes back as a `rejected` or
    /// `timeout` result, as with ``submit(batch:)``. (Not to be confused with the service's
    /// ``run()``, which takes no arguments.)
    /// - Throws: ``ProducerError/closed`` only.
    public func run(_ name: String, json args: RawJSON, options: TaskOptions = .default,
                    id: String? = nil) async throws -> TaskResult {
        let handles = try await enqueue([TaskSubmission(name, json: args, options: options, id: id)], group: nil)
        return await handles[0].result()
    }

    /// Submits a task whose args are JSON text and waits for its result (see
    /// ``run(_:json:options:id:)``).
    public func run(_ name: String, json: String, options: TaskOptions = .default,
                    id: String? = nil) async throws -> TaskResult {
        try await run(name, json: RawJSON(json), options: options, id: id)
    }

    // MARK: Internals

    private func submit(_ submissions: [TaskSubmission], throwingTaskErrors: Bool) async throws -> [TaskHandle] {
        let group = AcceptGroup(throwsTaskErrors: throwingTaskErrors)
        let handles = try await enqueue(submissions, group: group)
        table.withLock { $0.seal(group) }.perform()
        if let error = await group.answered.wait() { throw error }
        return handles
    }

    /// Takes window slots and hands the tasks to the I/O thread, `group` (if any) counting the
    /// broker's answers; `detached` tasks give their slots back once accepted.
    private func enqueue(_ submissions: [TaskSubmission], group: AcceptGroup?,
                         detached: Bool = false) async throws -> [TaskHandle] {
        let submissions = withCurrentTraceContext(submissions)
        var handles: [TaskHandle] = []
        handles.reserveCapacity(submissions.count)
        var start = submissions.startIndex
        while start < submissions.endIndex {
            let chunk = submissions[start..<min(start + configuration.window, submissions.endIndex)]
            start = chunk.endIndex
            try await acquireSlots(chunk.count)
            // Deadlines count from now, after any wait for the window: that wait is not the task's.
            let now = monotonicNanoseconds()
            let wallNow = wallClockNanoseconds()
            let completions = try table.withLock { table throws(ProducerError) in
                try table.admit(chunk, now: now, wallNow: wallNow, group: group, detached: detached, makeID: makeTaskID) { id, cell in
                    handles.append(TaskHandle(id: id, producer: self, cell: cell))
                }
            }
            completions.perform()
            wakeup.signal()
        }
        return handles
    }

    /// Takes `count` window slots (at most the window), waiting in line while they are not free.
    private func acquireSlots(_ count: Int) async throws {
        if try table.withLock({ table throws(ProducerError) in try table.takeSlots(count) }) { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if let now = table.withLock({ $0.waitForSlots(count, continuation: continuation) }) {
                continuation.resume(with: now)
            }
        }
    }
}
