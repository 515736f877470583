public import ConveyorProtocol
import ConveyorSystem
import Foundation

extension Producer {
    // MARK: Asking the broker

    /// Asks the broker where a task stands.
    /// - Throws: ``ProducerError/brokerTimeout(endpoint:waited:)``, ``ProducerError/closed``,
    ///   ``ProducerError/unexpectedReply(_:)`` for a state or result status this producer does
    ///   not know.
    public func status(id: String) async throws -> TaskStatusReport {
        guard case .status(let report) = try await request(.status(id), awaiting: .status(id)) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a STATUS")
        }
        return report
    }

    /// Asks the broker to cancel a task; only a queued task can be cancelled.
    /// - Throws: as ``status(id:)``.
    public func cancel(id: String) async throws -> CancelOutcome {
        guard case .cancel(let outcome) = try await request(.cancel(id), awaiting: .cancel(id)) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a CANCEL")
        }
        return outcome
    }

    /// The broker's statistics (docs/PROTOCOL.md §6.7).
    /// - Throws: ``ProducerError/brokerTimeout(endpoint:waited:)``, ``ProducerError/closed``,
    ///   ``ProducerError/unexpectedReply(_:)`` when the JSON does not decode.
    public func stats() async throws -> BrokerStatistics {
        let json = try await statsJSON()
        do {
            return try JSONDecoder().decode(BrokerStatistics.self, from: Data(json.bytes))
        } catch {
            throw ProducerError.unexpectedReply("the broker's statistics do not decode: \(error)")
        }
    }

    /// The broker's statistics as the exact JSON text it sent, fields newer than this build
    /// included: for tools that pass it on (`conveyor stats --json`). Prefer ``stats()``.
    public func statsJSON() async throws -> RawJSON {
        guard case .statistics(let json) = try await request(.stats, awaiting: .statistics) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a STATS")
        }
        return json
    }

    /// Requeues or purges the dead letter `id`, or all of them when `id` is `nil`.
    /// - Returns: the action and how many dead letters it concerned.
    /// - Throws: ``ProducerError/protocolError(_:)`` when the broker refuses the request, and as
    ///   ``stats()``.
    public func deadLetters(_ action: DeadLetterAction, id: String? = nil) async throws -> DeadLetterOutcome {
        // `{"action": ..., "count": n}`, or `{"error": ...}` (docs/PROTOCOL.md §4.8).
        struct Reply: Decodable, DeadLettersReply {
            let action: DeadLetterAction?
            let count: Int?
            let error: String?
        }
        let (reply, text) = try await deadLettersRequest(action, id: id ?? "", as: Reply.self)
        guard let count = reply.count else {
            throw ProducerError.unexpectedReply("the broker's DEAD_LETTERS_REPLY has no count: \(text)")
        }
        return DeadLetterOutcome(action: reply.action ?? action, count: count)
    }

    /// The broker's recent failures: tasks that ended without succeeding (`error`, `timeout`; not
    /// `cancelled`), dead letters or not, newest first, the newest 1,000 at most; only those
    /// named `name` when given.
    /// - Throws: ``ProducerError/protocolError(_:)`` from a broker that does not keep them (it
    ///   says the action is unknown), and as ``stats()``.
    public func recentFailures(named name: String? = nil) async throws -> [RecentFailure] {
        struct Reply: Decodable, DeadLettersReply {
            let failures: [RecentFailure]?
            let error: String?
        }
        return try await deadLettersRequest(.failures, id: name ?? "", as: Reply.self).reply.failures ?? []
    }

    /// A `DEAD_LETTERS` request and its reply decoded as `Reply`; a reply with `error` throws it.
    private func deadLettersRequest<Reply: Decodable & DeadLettersReply>(
        _ action: DeadLetterAction, id: String, as type: Reply.Type
    ) async throws -> (reply: Reply, text: String) {
        guard case .deadLetters(let json) = try await request(.deadLetters(action, id: id), awaiting: .deadLetters) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a DEAD_LETTERS")
        }
        let reply: Reply
        do {
            reply = try JSONDecoder().decode(Reply.self, from: Data(json.bytes))
        } catch {
            throw ProducerError.unexpectedReply("the broker's DEAD_LETTERS_REPLY does not decode: \(error): \(json.text)")
        }
        if let error = reply.error { throw ProducerError.protocolError(error) }
        return (reply, json.text)
    }

    /// Cancels every waiting task (queued, or waiting to retry) named `name` at the broker, each
    /// answered `cancelled`; running ones run on. For a queue whose producer is gone, say.
    /// - Returns: how many tasks were cancelled.
    /// - Throws: ``ProducerError/protocolError(_:)`` for a name the broker refuses, and as ``stats()``.
    public func purge(name: String) async throws -> Int {
        guard case .purge(let json) = try await request(.purge(name), awaiting: .purge) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a PURGE")
        }
        struct Reply: Decodable {
            let purged: Int?
            let error: String?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(json.bytes)) else {
            throw ProducerError.unexpectedReply("the broker's PURGE_REPLY does not decode: \(json.text)")
        }
        if let error = reply.error { throw ProducerError.protocolError(error) }
        guard let purged = reply.purged else { throw ProducerError.unexpectedReply("PURGE_REPLY without a count: \(json.text)") }
        return purged
    }

    /// One page of the broker's tasks (docs/PROTOCOL.md §4.8.3): those `query` chooses, at most
    /// its `limit`, from its `cursor` on. Pass the page's ``TaskPage/nextCursor`` in the next
    /// query, unchanged otherwise, until it is `nil`; a page may hold fewer tasks than asked for,
    /// none even, and still have a next one (the broker looks at a bounded number of records per
    /// request). Without the admin role, where clients are authenticated, only the identity's own
    /// tasks are listed.
    /// - Throws: ``ProducerError/protocolError(_:)`` for a query the broker refuses (its text names
    ///   the field) and from a broker too old to list tasks; ``ProducerError/refused(_:)`` for a
    ///   listing of dead letters without the admin role; and as ``stats()``.
    public func tasks(_ query: TaskQuery) async throws -> TaskPage {
        if let known = brokerCapabilities.withLock({ $0 }), !known.contains(.tasks) { throw brokerLacksTasks() }
        guard case .tasks(let json) = try await request(.tasks(query.json), awaiting: .tasks) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a TASKS")
        }
        struct Refusal: Decodable { let error: String? }
        if let error = (try? JSONDecoder().decode(Refusal.self, from: Data(json.bytes)))?.error {
            throw ProducerError.protocolError(error)
        }
        do {
            return try JSONDecoder().decode(TaskPage.self, from: Data(json.bytes))
        } catch {
            throw ProducerError.unexpectedReply("the broker's TASKS_REPLY does not decode: \(error): \(json.text.prefix(300))")
        }
    }

    /// What a listing fails with when the broker does not take `TASKS`: its HELLO does not list
    /// the capability, or it answered `unknown command 0xb`.
    func brokerLacksTasks() -> ProducerError {
        .protocolError("the broker at \(configuration.broker) cannot list tasks (it does not take TASKS, capability 'tasks'): it is older than this producer; upgrade the broker")
    }

    /// Queues `request` and waits for the reply filed under `key`, at most the request timeout
    /// (counted from now, even when the loop has not started yet).
    func request(_ request: Request, awaiting key: ReplyKey) async throws -> Reply {
        let deadline = monotonicNanoseconds() + configuration.requestTimeout.nanoseconds
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, any Error>) in
            let waiter = ReplyWaiter(deadline: deadline) { continuation.resume(with: $0) }
            if table.withLock({ $0.register(request, awaiting: key, waiter) }) {
                wakeup.signal()
            } else {
                continuation.resume(throwing: ProducerError.closed)
            }
        }
    }
}

/// A `DEAD_LETTERS_REPLY` body: whatever it holds, it may carry an `error`.
private protocol DeadLettersReply {
    var error: String? { get }
}
