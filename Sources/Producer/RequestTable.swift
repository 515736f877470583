import ConveyorProtocol
import DequeModule
import HeapModule

/// Everything a producer's callers and its I/O thread share, behind the producer's one lock: the
/// tasks in flight and their deadlines, the window and the submitters waiting for it, the callers
/// waiting for a reply (status, cancel, stats, dead letters), and the requests the I/O thread has
/// yet to send. No sockets, no clock (callers pass `now`), no continuation resumed inside: each
/// change returns the ``Completions`` to carry out once the lock is released.
///
/// Phases: `open` → `closed` (``close(with:)``, once; terminal). While open, requests made before
/// the I/O loop runs simply wait in the outbox. Once closed, every new call is refused with
/// ``ProducerError/closed`` and nothing waits any more.
struct RequestTable: Sendable {
    /// The numbers the table works with, from the ``ProducerConfiguration``.
    struct Limits: Sendable {
        /// Tasks in flight at most.
        var window: Int
        /// How long the broker has to answer a request (an ACCEPTED or REJECTED, a reply).
        var requestTimeout: Duration
        /// Added to a task's own timeout before the producer stops waiting for its result.
        var resultGrace: Duration
        /// The endpoint, for the timeout error's text.
        var broker: String

        init(window: Int, requestTimeout: Duration, resultGrace: Duration, broker: String) {
            self.window = window
            self.requestTimeout = requestTimeout
            self.resultGrace = resultGrace
            self.broker = broker
        }

        init(_ configuration: ProducerConfiguration) {
            self.init(window: configuration.window, requestTimeout: configuration.requestTimeout,
                      resultGrace: configuration.resultGrace, broker: configuration.broker)
        }

        /// What a call the broker did not answer in time gets.
        var timeout: ProducerError { .brokerTimeout(endpoint: broker, waited: requestTimeout) }
    }

    let limits: Limits
    private(set) var isClosed = false
    /// Tasks submitted and without a result, by id.
    private(set) var tasks: [String: PendingTask] = [:]
    /// Window slots taken (tasks in flight plus slots granted to a submitter about to add them).
    /// A detached task holds its slot until the broker accepts it, any other until its result.
    private(set) var inFlight = 0
    /// Submitters waiting for window slots, first come first served.
    private var windowWaiters = Deque<WindowWaiter>()
    /// Callers waiting for a reply, per key, in the order they asked.
    private var replyWaiters: [ReplyKey: Deque<ReplyWaiter>] = [:]
    /// Result deadlines of pending tasks, soonest first (entries of finished tasks are skipped).
    private var resultDeadlines = Heap<ResultDeadline>()
    /// Acceptance deadlines, in submission order (they are all `requestTimeout` after it).
    private var acceptDeadlines = Deque<AcceptDeadline>()
    /// What the I/O thread has yet to send.
    private var outbox: [Request] = []

    init(limits: Limits) { self.limits = limits }

    /// Callers waiting for a reply, all keys together.
    var replyWaiterCount: Int { replyWaiters.values.reduce(0) { $0 + $1.count } }
    var windowWaiterCount: Int { windowWaiters.count }

    // MARK: The window

    /// Takes `count` slots (at most the window) if they are free and no one waits before.
    mutating func takeSlots(_ count: Int) throws(ProducerError) -> Bool {
        guard !isClosed else { throw .closed }
        guard windowWaiters.isEmpty, inFlight + count <= limits.window else { return false }
        inFlight += count
        return true
    }

    /// Takes `count` slots, or queues `continuation` to be resumed when they are free. Returns
    /// what to resume `continuation` with now, or `nil` when it was queued.
    mutating func waitForSlots(_ count: Int, continuation: CheckedContinuation<Void, any Error>) -> Result<Void, ProducerError>? {
        if isClosed { return .failure(.closed) }
        if windowWaiters.isEmpty, inFlight + count <= limits.window {
            inFlight += count
            return .success(())
        }
        windowWaiters.append(WindowWaiter(count: count, continuation: continuation))
        return nil
    }

    /// Frees `count` slots and hands them to the submitters waiting first in line.
    private mutating func releaseSlots(_ count: Int, into completions: inout Completions) {
        inFlight -= count
        while let first = windowWaiters.first, inFlight + first.count <= limits.window {
            inFlight += first.count
            completions.grantedSlots.append(windowWaiters.removeFirst().continuation)
        }
    }

    // MARK: Submitting

    /// Adds the tasks of `chunk`, for which the caller holds `chunk.count` slots: each gets a
    /// cell, its deadlines (counted from `now`) and a SUBMIT in the outbox, and `handle` is called
    /// with its id and cell in order. A task whose id is in flight already is the same task: it
    /// gets the earlier cell, and its slot is given back. `detached` tasks leave the table once
    /// accepted (see ``accepted(_:)``).
    mutating func admit<Chunk: Collection<TaskSubmission>>(
        _ chunk: Chunk, now: UInt64, wallNow: UInt64? = nil, group: AcceptGroup?, detached: Bool = false,
        makeID: () -> String, handle: (String, TaskCell) -> Void
    ) throws(ProducerError) -> Completions {
        guard !isClosed else { throw .closed }
        let acceptDeadline = now + limits.requestTimeout.nanoseconds
        let grace = limits.resultGrace.nanoseconds
        var duplicates = 0
        for submission in chunk {
            let id = submission.id ?? makeID()
            if let earlier = tasks[id] {
                // Already in flight from this producer: the same task, so the same handle. Someone
                // now waits for its result, so a detached task stays until the result comes.
                if !detached { earlier.detached = false }
                handle(id, earlier.cell)
                duplicates += 1
                continue
            }
            let cell = TaskCell()
            // A delayed task's timeout counts from its not_before time (`wallNow`: the wall clock).
            var delay: UInt64 = 0
            if let wallNow, let notBefore = submission.options.notBefore {
                let due = min(notBefore, UInt64.max / 2_000_000) * 1_000_000
                if due > wallNow { delay = due - wallNow }
            }
            let resultDeadline = now + delay + UInt64(submission.options.timeoutMilliseconds) * 1_000_000 + grace
            let task = PendingTask(
                cell: cell, name: submission.name, args: submission.args.bytes, options: submission.options,
                acceptDeadline: acceptDeadline, resultDeadline: resultDeadline, group: group, detached: detached)
            tasks[id] = task
            group?.add()
            acceptDeadlines.append(AcceptDeadline(at: acceptDeadline, id: id))
            resultDeadlines.insert(ResultDeadline(at: resultDeadline, id: id))
            outbox.append(.submit(id: id, task))
            handle(id, cell)
        }
        var completions = Completions()
        releaseSlots(duplicates, into: &completions)
        return completions
    }

    /// Every task of `group`'s call has been added.
    mutating func seal(_ group: AcceptGroup) -> Completions {
        var completions = Completions()
        if let done = group.seal() { completions.answeredGroups.append(done) }
        return completions
    }

    // MARK: Requests

    /// Queues `request`, whose answer `waiter` waits for under `key`. Returns `false`, queueing
    /// nothing, when the table is closed.
    mutating func register(_ request: Request, awaiting key: ReplyKey, _ waiter: ReplyWaiter) -> Bool {
        guard !isClosed else { return false }
        replyWaiters[key, default: []].append(waiter)
        outbox.append(request)
        return true
    }

    // MARK: The I/O thread's side

    /// The requests to send now; the outbox is empty afterwards.
    mutating func takeOutbox() -> [Request] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    /// A SUBMIT for every task without a result, to send again on a new connection.
    func pendingSubmissions() -> [Request] {
        tasks.map { Request.submit(id: $0.key, $0.value) }
    }

    /// The broker accepted these tasks: their submit calls stop waiting for them.
    ///
    /// A detached task is done with here: it leaves the table and frees its window slot now, not
    /// when a result comes (no one waits for one, and with no consumer running none may come for
    /// long: a detached batch larger than the window would wait forever for slots). Being gone, it
    /// is not submitted again on a new connection, a result the broker sends later is ignored as
    /// an unknown id, and the producer's shutdown does not end it: it stays in the broker.
    ///
    /// An id followed by a space and another id (`SUBMITTED HELD`) was answered with a held task:
    /// its uniqueness key was taken; its handle learns the held task's id and gets its result.
    mutating func accepted<IDs: Sequence<String>>(_ ids: IDs) -> Completions {
        var completions = Completions()
        var forgotten = 0
        for field in ids {
            var id = field
            var existing: String?
            if let space = field.utf8.firstIndex(of: 0x20) {
                id = String(field[..<space])
                existing = String(field[field.index(after: space)...])
            }
            guard let task = tasks[id], !task.accepted else { continue }
            if let existing { task.cell.existingID = existing }
            task.accepted = true
            if let group = task.group {
                task.group = nil
                if let done = group.settle(error: nil) { completions.answeredGroups.append(done) }
            }
            if task.detached {
                tasks[id] = nil
                forgotten += 1
            }
        }
        if forgotten > 0 { releaseSlots(forgotten, into: &completions) }
        return completions
    }

    /// Tasks ended (a result, a refusal, a deadline): each leaves the table, tells its submit call
    /// if that still waits, hands its result to its cell and frees its slot. Unknown ids (a
    /// duplicate result, a task that ended otherwise) are ignored.
    mutating func finish(_ outcomes: [Outcome]) -> Completions {
        var completions = Completions()
        guard !outcomes.isEmpty else { return completions }
        completions.results.reserveCapacity(outcomes.count)
        for outcome in outcomes {
            guard let task = tasks.removeValue(forKey: outcome.submittedID ?? outcome.result.id) else { continue }
            if outcome.submittedID != nil { task.cell.existingID = outcome.result.id }
            if let group = task.group, let done = group.settle(error: outcome.acceptError, refusal: outcome.result) {
                completions.answeredGroups.append(done)
            }
            completions.results.append(CellResult(cell: task.cell, result: outcome.result))
        }
        releaseSlots(completions.results.count, into: &completions)
        return completions
    }

    /// The broker's answer to the first caller waiting under `key`; none if no one waits (a reply
    /// that came after its caller gave up).
    mutating func answer(_ key: ReplyKey, with result: Result<Reply, ProducerError>) -> Completions {
        var completions = Completions()
        guard var waiting = replyWaiters[key], let first = waiting.popFirst() else { return completions }
        replyWaiters[key] = waiting.isEmpty ? nil : waiting
        completions.replies.append(ReplyDelivery(waiter: first, result: result))
        return completions
    }

    /// Ends what is overdue at `now`: a task the broker did not accept or refuse within the request
    /// timeout (its submit throws ``ProducerError/brokerTimeout(endpoint:waited:)``, its handle
    /// gets a `timeout` result), a task without a result past its timeout plus the grace (a
    /// `timeout` result), a request without a reply (it throws the timeout).
    ///
    /// When `brokerAlive` (the connection is up: the broker's libzmq answers its heartbeats, so
    /// the broker is busy, not gone), a task not answered within the request timeout is not a lost
    /// task: its submit call returns (``Completions/unconfirmed`` names it, for a warning), and
    /// its handle waits for the result until the task's own deadline, as for an accepted task
    /// (a fire-and-forget task is still refused with `timeout`: nothing waits for its result).
    mutating func expire(now: UInt64, brokerAlive: Bool = false) -> Completions {
        if resultDeadlines.count > 4 * tasks.count + 65_536 {
            // Entries of finished tasks wait until they come due: drop them once they dominate.
            let tasks = self.tasks
            resultDeadlines = Heap(resultDeadlines.unordered.filter { tasks[$0.id] != nil })
        }
        let timeout = limits.timeout
        var outcomes: [Outcome] = []
        // Acceptance deadlines are in submission order, which is (nearly) the order the broker
        // answers in: the front holds what is still unanswered, answered ones leave it at once.
        var unconfirmed: [String] = []
        var settled: [AcceptGroup] = []
        while let first = acceptDeadlines.first {
            if let task = tasks[first.id], !task.accepted, first.at == task.acceptDeadline {
                guard first.at < now else { break }
                if brokerAlive && !task.detached {
                    unconfirmed.append(first.id)
                    if let group = task.group {
                        task.group = nil
                        if let done = group.settle(error: nil) { settled.append(done) }
                    }
                } else {
                    outcomes.append(Outcome(result: TaskResult(id: first.id, status: .timeout, kind: .timeout, message: timeout.description),
                                            acceptError: timeout))
                }
            }
            acceptDeadlines.removeFirst()
        }
        while let next = resultDeadlines.min, next.at < now {
            resultDeadlines.removeMin()
            guard let task = tasks[next.id], next.at == task.resultDeadline else { continue }
            let seconds = Double(task.options.timeoutMilliseconds) / 1000
            let text = "no result from the broker within the task's timeout of \(seconds) s plus \(limits.resultGrace)"
            outcomes.append(Outcome(result: TaskResult(id: next.id, status: .timeout, kind: .timeout, message: text), acceptError: nil))
        }
        var completions = finish(outcomes)
        completions.answeredGroups += settled
        completions.unconfirmed = unconfirmed
        for key in replyWaiters.isEmpty ? [] : Array(replyWaiters.keys) {
            guard var waiting = replyWaiters[key] else { continue }
            while let first = waiting.first, first.deadline < now {
                completions.replies.append(ReplyDelivery(waiter: waiting.removeFirst(), result: .failure(timeout)))
            }
            replyWaiters[key] = waiting.isEmpty ? nil : waiting
        }
        return completions
    }

    /// Fails what the broker has not answered and never will (it speaks another protocol): tasks
    /// not accepted yet (their submit calls throw `error`, their handles get an `error` result) and
    /// every request waiting for a reply. Accepted tasks keep waiting for their results.
    mutating func failUnanswered(with error: ProducerError) -> Completions {
        let unaccepted = tasks.compactMap { id, task in
            task.accepted ? nil : Outcome(result: TaskResult(id: id, status: .error, kind: .rejected, message: error.description), acceptError: error)
        }
        var completions = finish(unaccepted)
        failReplyWaiters(with: error, into: &completions)
        return completions
    }

    /// `open` → `closed`: every call still waiting ends. Tasks without a result get an `error`
    /// result (`consumer_lost`: the producer stopped waiting) and their submit calls throw `error`;
    /// submitters waiting for the window and callers waiting for a reply throw `error`. Closing a
    /// closed table finds nothing left to end.
    mutating func close(with error: ProducerError) -> Completions {
        isClosed = true
        var completions = Completions()
        completions.refusal = error
        completions.refusedSlots = windowWaiters.map(\.continuation)
        windowWaiters.removeAll()
        for (id, task) in tasks {
            if let group = task.group, let done = group.settle(error: error) { completions.answeredGroups.append(done) }
            completions.results.append(CellResult(cell: task.cell, result: TaskResult(id: id, status: .error, kind: .consumerLost, message: error.description)))
        }
        tasks.removeAll()
        inFlight = 0
        resultDeadlines = Heap()
        acceptDeadlines.removeAll()
        outbox.removeAll()
        failReplyWaiters(with: error, into: &completions)
        return completions
    }

    private mutating func failReplyWaiters(with error: ProducerError, into completions: inout Completions) {
        for waiting in replyWaiters.values {
            for waiter in waiting { completions.replies.append(ReplyDelivery(waiter: waiter, result: .failure(error))) }
        }
        replyWaiters.removeAll()
    }
}

extension TaskResult {
    /// A non-`ok` result: `{"error": message, "kind": kind}` as the body, no info.
    init(id: String, status: TaskStatus, kind: ErrorKind, message: String) {
        self.init(id: id, status: status, body: RawJSON(JSONText.errorBody(kind, message)), info: nil)
    }
}
