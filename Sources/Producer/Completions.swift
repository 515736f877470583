import ConveyorProtocol

/// Which answer a request waits for. `STATUS_REPLY` and `CANCEL_REPLY` are matched by task id,
/// the other replies first in first out (docs/PROTOCOL.md §8.2): the waiter families of the
/// producer, kept in one table.
enum ReplyKey: Hashable, Sendable {
    case status(String)
    case cancel(String)
    case statistics
    case deadLetters
    case purge
    case tasks
    /// An operator's command answered with one JSON frame: `PAUSE`, `SCHEDULE`, `LIMIT`.
    case admin(Command)
}

/// An answer of the broker to a request, as the I/O thread read it.
enum Reply: Sendable {
    case status(TaskStatusReport)
    case cancel(CancelOutcome)
    /// The stats JSON, untouched: callers decode it on their own task, not on the I/O thread.
    case statistics(RawJSON)
    case deadLetters(RawJSON)
    case purge(RawJSON)
    case tasks(RawJSON)
    case admin(RawJSON)
}

/// A caller waiting for a reply: `resume` is called exactly once, with the reply or an error.
/// (A closure rather than a continuation, so that the table can be tested without one; requests
/// are not on the hot path, so its allocation does not matter.)
struct ReplyWaiter: Sendable {
    let deadline: UInt64
    let resume: @Sendable (Result<Reply, ProducerError>) -> Void
}

/// A reply, or the error that ends a wait, for one waiter.
struct ReplyDelivery: Sendable {
    let waiter: ReplyWaiter
    let result: Result<Reply, ProducerError>
}

/// What a change of the ``RequestTable`` leaves to do once the producer's lock is released:
/// continuations are resumed and results delivered outside the lock, because a resumed waiter or
/// a `whenDone` callback may run at once on the thread that does it.
///
/// Every path that ends waits (an answer, a deadline, an incompatible broker, shutdown) returns
/// one of these, and ``perform()`` is the only place they are carried out.
struct Completions: Sendable {
    /// Submitters given the window slots they waited for.
    var grantedSlots: [CheckedContinuation<Void, any Error>] = []
    /// Submitters that will not get their slots: they throw `refusal`.
    var refusedSlots: [CheckedContinuation<Void, any Error>] = []
    var refusal: ProducerError = .closed
    /// Submit calls every task of which the broker has answered.
    var answeredGroups: [AcceptGroup] = []
    /// Task results for the tasks' cells.
    var results: [CellResult] = []
    var replies: [ReplyDelivery] = []
    /// Tasks the broker, alive but busy, has not answered within the request timeout: their
    /// submit calls returned and their handles wait on (``RequestTable/expire(now:brokerAlive:)``).
    var unconfirmed: [String] = []

    var isEmpty: Bool {
        grantedSlots.isEmpty && refusedSlots.isEmpty && answeredGroups.isEmpty && results.isEmpty && replies.isEmpty
    }

    /// Carries everything out: slot waiters first (so the window refills), then submit calls,
    /// then results, then replies. Call with no lock held.
    func perform() {
        for continuation in grantedSlots { continuation.resume() }
        for continuation in refusedSlots { continuation.resume(throwing: refusal) }
        for group in answeredGroups { group.finish() }
        for delivery in results { delivery.cell.complete(delivery.result) }
        for delivery in replies { delivery.waiter.resume(delivery.result) }
    }
}
