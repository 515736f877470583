import ConveyorJournal
import ConveyorProtocol
import ZeroMQ

/// Every task record and every consumer's credit, and the only place where a task changes state.
///
/// No sockets and no clock: each method takes the time (`now`: wall-clock ns for task times,
/// `monotonic` for consumer liveness), and what must go out (a task for a consumer, a result for
/// a producer) is handed to the ``BrokerOutbox`` as part of the transition that causes it, so a
/// transition cannot happen without its message. A transition the current state does not allow
/// is refused and counted in ``illegalTransitions``, never applied.
struct TaskTable<Outbox: BrokerOutbox> {
    let outbox: Outbox
    /// Every task not yet evicted, by id.
    var records: [String: TaskRecord] = [:]
    /// The tasks not finished, in acceptance order, for `TASKS` (LiveTasks.swift).
    var live = LiveTasks()
    var queue = MemoryTaskQueue()
    private(set) var consumers = Dispatcher()
    var timers = TaskTimers()
    var results: ResultStore<TaskRecord>
    var deadLetters: DeadLetters
    private var sequence: UInt64 = 0
    /// Dispatches so far: each dispatch's number orders a consumer's tasks (``isReserved(_:)``).
    private var dispatches: UInt64 = 0
    /// Ids of reserved tasks a producer cancelled, whose consumer was sent REVOKE: handed back
    /// unstarted, such a task ends `cancelled` instead of going back to the queue.
    var revoking: Set<String> = []
    /// The newest tasks that ended without succeeding (`conveyor failures`).
    var failures = RecentFailures()
    /// Counters for `STATS`; the engine adds its own (rejected, duplicates, bad messages).
    var totals = BrokerStatistics.Totals()
    /// Outcomes by name and the latency histogram, for `STATS` (NameTally.swift).
    var nameTally = NameTally()
    /// How often each ``TaskTransition`` happened, by raw value.
    private(set) var transitionCounts = [Int](repeating: 0, count: TaskTransition.allCases.count)
    /// Transitions refused because the task's state did not allow them, in all and by raw value.
    private(set) var illegalTransitions = 0
    private(set) var refusedCounts = [Int](repeating: 0, count: TaskTransition.allCases.count)
    /// Tasks in state `delayed` (waiting out a retry backoff, or scheduled), and of those the
    /// scheduled ones (waiting for their `not_before` time), kept by ``move(_:to:)``.
    private(set) var delayedCount = 0
    private(set) var scheduledCount = 0
    /// Uniqueness keys held, and the producers waiting on a task through one (UniqueKeys.swift).
    var unique = UniqueKeys()
    /// Bytes of args of every task not done (queued, delayed, running): what `--max-queued-bytes`
    /// bounds. A task's args are let go when it finishes.
    private(set) var heldArgsBytes = 0
    /// What the queue bound counts: tasks waiting for a consumer and tasks waiting out a backoff.
    var heldCount: Int { queue.count + delayedCount }
    /// What each producer identity and each task name holds of those bounds.
    var shares = Shares()
    /// Ids of tasks with `cancel_on_disconnect` not yet done, by the routing id their results
    /// go to: the engine cancels those waiting once that producer is gone.
    var disconnectCancels: [[UInt8]: Set<String>] = [:]
    /// The accounts of records rebuilt as done, which count against nothing.
    let finishedAccount = ShareAccount(key: [])
    /// Whether ready tasks go to consumers. Off once the broker stops: tasks then only queue.
    var dispatching = true
    /// Task names paused (`conveyor pause`): their tasks queue and are not dispatched until the
    /// name is resumed (TaskTable+Pause.swift). Durable, like the tasks.
    var paused: Set<String> = []
    /// Names blocked (paused, or at a global limit) and the limits (TaskTable+Limits.swift).
    var nameLimits = NameLimits()
    /// The records of this loop turn's transitions, when the broker is durable (`journaling`):
    /// each transition appends what it changed; the broker hands them to its ``Journal`` at the
    /// turn's end (TaskTable+Journal.swift).
    var journal = JournalEncoder(capacity: 0)
    var journaling = false
    /// Per-name counters and latencies (TaskMetrics.swift); `nil`: not recorded.
    var metrics: TaskMetrics?

    /// A task lost with its consumer is tried at least this many times before it is dead-lettered.
    static var lostDeliveryAttempts: UInt32 { 3 }

    #if DEBUG
    /// Deliberate bugs, for the tests that show the model test catches them. Never set outside tests.
    var seededFaults: Set<SeededFault> = []
    #endif

    /// How long a lease on a dispatched task lasts at least (ns); ``ConsumerRecord/leaseNanos``.
    let leaseNanos: UInt64
    /// When leases were last looked at (wall-clock ns): once a second is enough.
    var leasesCheckedAt: UInt64 = 0

    init(outbox: Outbox, resultCapacity: Int, resultBytes: Int = .max, resultRetentionNanoseconds: UInt64,
         deadLetterCapacity: Int, deadLetterBytes: Int = .max, leaseNanoseconds: UInt64 = 30_000_000_000) {
        self.outbox = outbox
        self.leaseNanos = leaseNanoseconds
        self.results = ResultStore(capacity: resultCapacity, byteCapacity: resultBytes,
                                   retentionNanoseconds: resultRetentionNanoseconds)
        self.deadLetters = DeadLetters(capacity: deadLetterCapacity, byteCapacity: deadLetterBytes)
    }

    // MARK: Queries

    subscript(id: String) -> TaskRecord? { records[id] }

    func count(of transition: TaskTransition) -> Int { transitionCounts[transition.rawValue] }
    var runningCount: Int { consumers.runningCount }

    /// The arrival order for a new record.
    mutating func nextSequence() -> UInt64 {
        sequence += 1
        return sequence
    }

    /// A restored or revived task's args count against `--max-queued-bytes`.
    mutating func restoreHeldBytes(_ count: Int) { heldArgsBytes += count }

    /// After a restore: new records arrive after every restored one.
    mutating func restoreSequence(after last: UInt64) { sequence = max(sequence, last) }

    /// The one way a task's state changes (``TaskRecord/move(to:)``), keeping the counts by state.
    mutating func move(_ task: TaskRecord, to next: TaskRecord.State) {
        let wasHeld = task.isHeld, wasRunning = task.isRunning
        if task.isDelayed {
            delayedCount -= 1
            if task.attempts == 0 { scheduledCount -= 1 }
        }
        task.move(to: next)
        if task.isDelayed {
            delayedCount += 1
            if task.attempts == 0 { scheduledCount += 1 }
        }
        if wasHeld != task.isHeld {
            let change = wasHeld ? -1 : 1
            task.owner.held += change
            task.nameShare.held += change
        }
        if wasRunning, !nameLimits.gates.isEmpty, !task.isRunning { gateReleased(task) }
    }

    mutating func counted(_ transition: TaskTransition) { transitionCounts[transition.rawValue] &+= 1 }

    /// Refuses a transition: counted, logged by the caller if it wants, never applied.
    mutating func refuse(_ transition: TaskTransition) {
        refusedCounts[transition.rawValue] &+= 1
        illegalTransitions += 1
        totals.illegalTransitions = illegalTransitions
    }

    // MARK: Accept and dispatch

    /// (new) → queued, then straight on to running when a consumer serving `name` has credit and
    /// no task of that name waits before it; or, with a `not_before` time after `now`, (new) →
    /// delayed until then (`schedule`, TaskTable+Delay.swift), its deadline counted from that
    /// time. The caller has checked the id is new (and its uniqueness key free: `uniqueScope` is
    /// the identity the key is held for, "" without client authentication). `owner` is the
    /// producer identity whose share it counts against (by default its routing id, `producer`).
    @discardableResult
    mutating func accept(id: String, name: String, args: [UInt8], options: TaskOptions, producer: [UInt8],
                         owner: [UInt8]? = nil, uniqueScope: String = "", now: UInt64) -> TaskRecord {
        let scheduled = Self.scheduledTime(options, now: now)
        let readyAt = scheduled ?? now
        let task = TaskRecord(id: id, name: name, args: args, options: options, producer: producer,
                              owner: shares.producer(owner ?? producer), nameShare: shares.name(name),
                              sequence: nextSequence(), now: readyAt)
        records[id] = task
        live.append(task)
        heldArgsBytes += args.count
        Shares.adopt(task, held: true)
        if options.cancelOnDisconnect { disconnectCancels[producer, default: []].insert(id) }
        timers.addDeadline(task)
        tally(.submitted, task)
        counted(.accept)
        if journaling { journalAccepted(task) }
        if let key = options.uniqueKey { unique.hold(UniqueKeys.key(scope: uniqueScope, name: name, key: key), by: task) }
        #if DEBUG
        if seededFaults.contains(.uniqueKeyNotHeld), let key = options.uniqueKey {
            unique.release(UniqueKeys.key(scope: uniqueScope, name: name, key: key))
        }
        if seededFaults.contains(.scheduledRunsEarly), scheduled != nil {
            route(task, atFront: false, now: now)
            return task
        }
        #endif
        if let scheduled {
            schedule(task, until: scheduled)
        } else {
            route(task, atFront: false, now: now)
        }
        return task
    }

    /// A task submitted again (by its producer after a reconnect, or another one): the same task,
    /// whatever the content. Its state does not change; its results go to `producer` from now on.
    mutating func reroute(_ task: TaskRecord, to producer: [UInt8]) {
        if task.options.cancelOnDisconnect, !task.isDone, producer != task.producer {
            disconnectCancels[task.producer]?.remove(task.id)
            if disconnectCancels[task.producer]?.isEmpty == true { disconnectCancels[task.producer] = nil }
            disconnectCancels[producer, default: []].insert(task.id)
        }
        task.producer = producer
        counted(.reroute)
        if journaling { journal.rerouted(id: task.id, producer: producer) }
    }

    /// Whether a task for `name` would be accepted past `maxQueued`: it would wait in the queue.
    func wouldQueue(_ name: String) -> Bool {
        queue.hasWaiting(named: name) || isBlocked(name) || consumers.leastLoaded(serving: name) == nil
    }

    /// A task that is (again) ready to run: to the least loaded consumer serving its name when
    /// none of that name waits before it and the name is not paused, else into the queue (at the
    /// front for a task that was already on its way once).
    mutating func route(_ task: TaskRecord, atFront: Bool, now: UInt64, avoiding avoided: ConsumerRecord? = nil) {
        // Tasks of the name waiting while a consumer serving it has credit can only be tasks that
        // avoid that consumer (taken back from it when its lease ran out, until it asks for work
        // again): this one avoids nothing and goes there, rather than wait behind them.
        if dispatching, !isBlocked(task.name), !queue.hasWaiting(named: task.name) || avoided == nil,
           let consumer = consumers.leastLoaded(serving: task.name, avoiding: avoided) {
            dispatch(task, to: consumer, now: now)
        } else if atFront {
            queue.prepend(task)
        } else {
            queue.append(task)
        }
    }

    /// queued → running(consumer). The task is out of the queue (just accepted, routed, or popped);
    /// `consumer` came from ``Dispatcher/leastLoaded(serving:)``, so it is registered and reachable
    /// (checked in debug builds only: this runs once per task). A refused dispatch puts the task
    /// back at the front of its queue rather than lose it.
    private mutating func dispatch(_ task: TaskRecord, to consumer: ConsumerRecord, now: UInt64) {
        assert(consumers.isRegistered(consumer), "dispatch to a consumer that is not registered")
        guard task.isQueued else {
            refuse(.dispatch)
            if !task.isDone { queue.prepend(task) }
            return
        }
        move(task, to: .running(consumer: consumer.key))
        task.attempts += 1
        // A version-2 consumer cannot renew (RENEW is version 3): no lease, only the deadline.
        task.leaseExpiry = consumer.version == .v2 ? .max : now &+ consumer.leaseNanos
        task.recordDispatch(to: consumer.key)
        dispatches &+= 1
        task.dispatchNumber = dispatches
        if task.attempts == 1, let meter = meter(of: task) {
            meter.dispatchLatency.recordNanoseconds(Int64(clamping: now &- task.acceptedAt))
        }
        consumer.inFlight.insert(task.id)
        if !nameLimits.gates.isEmpty { gateDispatched(task, now: now) }
        counted(.dispatch)
        if journaling { journal.dispatched(id: task.id, attempts: task.attempts) }
        let remaining = task.deadline > now ? (task.deadline - now) / 1_000_000 : 1
        outbox.dispatch(task, attempt: task.attempts, timeoutMilliseconds: UInt32(clamping: max(1, remaining)),
                        to: consumer)
    }

    /// Hands queued tasks that `consumer` serves out while it has credit: each to the consumer
    /// serving its name that is least loaded, which may be another one. (Filling the reporting
    /// consumer first would let whoever reports first, with a large prefetch, take the whole queue.)
    /// Tasks of blocked names (paused, or at a limit) stay where they are.
    mutating func refill(_ consumer: ConsumerRecord, now: UInt64) {
        var names = dispatchableNames(of: consumer), seen = nameLimits.changes
        while dispatching, consumer.credit > 0, !consumer.unreachable, consumers.isRegistered(consumer),
              let task = queue.popFirst(among: names) {
            guard let target = consumers.leastLoaded(serving: task.name) else {
                queue.prepend(task)
                return
            }
            dispatch(task, to: target, now: now)
            // The dispatch took a name's last token or slot: leave it out from now on.
            if nameLimits.changes != seen { (names, seen) = (dispatchableNames(of: consumer), nameLimits.changes) }
        }
    }

    // MARK: Consumers

    /// A new consumer: registered, then given queued work.
    mutating func register(_ consumer: ConsumerRecord, now: UInt64) {
        consumer.leaseNanos = lease(for: consumer.info)
        consumers.register(consumer)
        refill(consumer, now: now)
    }

    /// A known consumer's new capacity or names.
    mutating func update(_ consumer: ConsumerRecord, info: ReadyInfo, now: UInt64) {
        consumer.leaseNanos = lease(for: info)
        consumers.update(consumer, info: info)
        refill(consumer, now: now)
    }

    /// Forgets consumers; each task they held is released (back to the front of its queue, or to
    /// a consumer still here) or, lost too often, exhausted. All are unregistered before any task
    /// is released, so that none is routed to a consumer about to be forgotten. Returns how many
    /// tasks each held, `nil` for one that was not registered.
    @discardableResult
    mutating func remove(_ gone: [ConsumerRecord], reason: String, now: UInt64) -> [Int?] {
        let removed = gone.map { consumers.unregister($0) }
        var counts: [Int?] = []
        for (consumer, wasRegistered) in zip(gone, removed) {
            guard wasRegistered else {
                counts.append(nil)
                continue
            }
            let held = consumer.inFlight.compactMap { records[$0] }.sorted { $0.sequence > $1.sequence }
            consumer.inFlight.removeAll()
            counts.append(held.count)
            for task in held where task.holder == consumer.key {
                // Newest first, each to the front, so the oldest ends up first.
                release(task, reason: reason, now: now)
            }
        }
        return counts
    }

    /// running → queued (release) or, past the attempts for lost deliveries, → done (exhaust).
    private mutating func release(_ task: TaskRecord, reason: String, now: UInt64) {
        guard task.holder != nil else { return refuse(.release) }
        takeBack(task, as: .release, reason: reason, now: now, avoiding: nil)
    }

    /// A running task taken back from its consumer (`release`: the consumer lost; `reclaim`: its
    /// lease ran out): back to the front of its queue with the attempt counted, or, past the
    /// attempts for lost deliveries, → done (`exhaust`, dead-lettered, saying `reason`).
    /// `avoiding` is not given the task again at once.
    mutating func takeBack(_ task: TaskRecord, as transition: TaskTransition, reason: String, now: UInt64,
                           avoiding avoided: ConsumerRecord?) {
        let limit = max(task.options.maxAttempts, Self.lostDeliveryAttempts)
        if task.attempts >= limit {
            move(task, to: .done)
            counted(.exhaust)
            tally(.failed, task)
            let why = "\(reason) \(task.attempts) time\(task.attempts == 1 ? "" : "s"); attempts exhausted"
            addDeadLetter(task, reason: why, now: now)
            finish(task, status: .error, body: JSONText.errorBody(.attemptsExhausted, why), now: now)
        } else {
            move(task, to: .queued)
            #if DEBUG
            if seededFaults.contains(.requeueLosesAttempts) { task.attempts = 0 }
            #endif
            counted(transition)
            if journaling { journal.queued(id: task.id, attempts: task.attempts) }
            tally(.requeued, task)
            route(task, atFront: true, now: now, avoiding: avoided)
        }
    }

    // MARK: Results

    /// Keeps the result on the record (for `status` and resubmissions) until the retention drops
    /// it, and hands it to the producer. Called by every transition into `done`, once.
    mutating func finish(_ task: TaskRecord, status: TaskStatus, body: [UInt8], info: [UInt8], now: UInt64) {
        let stored = StoredResult(status: status, body: body, info: info)
        if RecentFailures.counts(status) {
            failures.add(id: task.id, name: task.name, status: status, body: body, info: info, at: now, argsBytes: task.args.count)
        }
        task.result = stored
        heldArgsBytes -= task.args.count
        shares.release(task)
        if task.options.cancelOnDisconnect {
            disconnectCancels[task.producer]?.remove(task.id)
            if disconnectCancels[task.producer]?.isEmpty == true { disconnectCancels[task.producer] = nil }
        }
        task.args = []
        if task.options.uniqueKey != nil { uniqueFinished(task, now: now) }
        // The delivery first: a journal cut between the two records loses the end, not the callback.
        if let url = task.options.callbackURL { createDelivery(for: task, url: url, status: status, body: body, info: info, now: now) }
        if journaling { journal.finished(id: task.id, status: status, body: body, info: info, finishedAt: now) }
        for old in results.insert(task, finishedAt: now, size: body.count + info.count) { evict(old) }
        totals.completed += 1
        nameTally.finished(name: task.name, status: status, latencyNanoseconds: now > task.acceptedAt ? now - task.acceptedAt : 0)
        if status == .ok || status == .error, let meter = meter(of: task) {
            meter.latency.recordNanoseconds(Int64(clamping: now &- task.acceptedAt))
        }
        // A delivery's result goes to no producer (TaskTable+Webhooks.swift).
        if !task.producer.isEmpty { outbox.result(id: task.id, stored, to: task.producer, redelivery: false) }
    }

    mutating func finish(_ task: TaskRecord, status: TaskStatus, body: String, now: UInt64) {
        finish(task, status: status, body: Array(body.utf8), info: Array(ResultInfo(attempts: Int(task.attempts)).json.utf8), now: now)
    }

    /// done → forgotten: the retention let the result go.
    mutating func evict(_ task: TaskRecord) {
        guard task.isDone else { return refuse(.evict) }
        // The record may live on in a deadline entry until that comes due or is compacted away:
        // let its result go now, so the retention bounds the memory results take.
        task.result = nil
        if records[task.id] === task {
            records[task.id] = nil
            if task.options.uniqueKey != nil { unique.evicted(task) }
            counted(.evict)
            if journaling { journal.evicted(id: task.id) }
        }
    }

    mutating func addDeadLetter(_ task: TaskRecord, reason: String, now: UInt64) {
        if journaling {
            journal.deadLettered(id: task.id, name: task.name, attempts: task.attempts, reason: reason, args: task.args,
                                 options: task.options, producer: task.producer)
        }
        deadLetters.add(DeadLetter(id: task.id, name: task.name, attempts: task.attempts, reason: reason,
                                   args: task.args, options: task.options, producer: task.producer,
                                   acceptedAt: task.acceptedAt, at: now))
        tally(.deadLettered, task)
    }
}
