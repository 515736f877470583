/// A deliberately simple model of what the broker must do with tasks, written without looking at
/// (and sharing no code with) ``TaskTable``: plain dictionaries and sets, one rule per event.
/// The model test feeds the same events to both and compares.
struct ReferenceModel {
    enum Phase: Equatable {
        case waiting
        case backoff(until: UInt64)
        /// Submitted with a `not_before` time that has not come: waits for it, then waits.
        case scheduled(until: UInt64)
        case held(by: Int)
        case ended(String)
    }

    struct Task {
        let name: String
        let maxAttempts: UInt32
        let timeoutAt: UInt64
        let timeoutNanos: UInt64
        let backoffNanos: UInt64
        var phase: Phase = .waiting
        var attempts: UInt32 = 0
        var sentTo: Set<Int> = []
        var arrival: Int
        /// The producer that submitted it (its share), and the one its results go to now (the
        /// last to submit it).
        var owner: [UInt8]
        var route: [UInt8]
        /// Which dispatch sent it last (the model's own count): a consumer runs its tasks in the
        /// order they came, so those past its threads are reserved.
        var dispatchNumber = 0
        /// While held: when its lease runs out unless its consumer renews it.
        var leaseExpiry: UInt64 = 0
        /// Taken back from this consumer when its lease ran out: not given back to it until it
        /// next asks for work (DONE or READY), though it may have a free thread.
        var avoiding: Int?
        /// Its uniqueness key (name and key), how long it keeps it after its end, and when it ended.
        var uniqueKey: String?
        var uniqueTTL: UInt64 = 0
        var endedAt: UInt64 = 0
    }

    struct Consumer {
        var capacity: Int
        var threads = 1
        var names: Set<String>
        var alive = true
        /// Tasks it was sent and has not answered (its threads are busy with them).
        var busy: Set<String> = []
        /// Leases that ran out on it since it last answered a task it held: three quarantine it.
        var expiredSinceAnswer = 0
        var quarantined: Bool { expiredSinceAnswer >= 3 }
    }

    var tasks: [String: Task] = [:]
    var consumers: [Int: Consumer] = [:]
    /// Task names paused (`PAUSE`): none of their tasks is dispatched; they wait.
    var paused: Set<String> = []
    /// Ended tasks (id and life) in the order they ended, for the retention by count.
    var endedOrder: [(id: String, life: Int)] = []
    /// Dead letters, oldest first.
    var deadLetters: [(id: String, name: String, maxAttempts: UInt32, timeoutNanos: UInt64, backoffNanos: UInt64,
                       route: [UInt8])] = []
    let retentionCount: Int
    let maxQueued: Int
    /// Results the model expects to see delivered by the last event.
    var expected: [(id: String, status: String)] = []
    private var arrivals = 0
    private var dispatches = 0
    /// Cancels of reserved tasks waiting for their consumer's hand-back: when the wait ends
    /// (monotonic ns). `revoking`: those whose hand-back would still end them cancelled.
    var pendingCancels: [String: (deadline: UInt64, waiters: Int)] = [:]
    var revoking: Set<String> = []
    /// The time of the event being applied (wall ns): when a task that ends now ended.
    var now: UInt64 = 0
    /// Which task (id and life) took each uniqueness key ("name key"), and the submits that were
    /// answered with it and wait for its result (their ids), by the holder's id.
    var uniqueHolders: [String: (id: String, life: Int)] = [:]
    var uniqueWaiters: [String: [String]] = [:]
    /// How long a lease lasts (the broker's, or three of the consumers' 1 s heartbeats if longer),
    /// and when leases were last looked at: the broker looks once a second of wall time.
    let leaseNanos: UInt64
    var leasesCheckedAt: UInt64 = 0

    init(retentionCount: Int, maxQueued: Int, leaseNanos: UInt64) {
        self.retentionCount = retentionCount
        self.maxQueued = maxQueued
        self.leaseNanos = max(leaseNanos, 3_000_000_000)
    }

    static let lostLimit: UInt32 = 3

    var waitingCount: Int { tasks.values.filter { $0.phase == .waiting }.count }

    /// What the queue bound counts: waiting tasks, those waiting out a backoff, scheduled ones.
    var heldCount: Int { tasks.values.filter(\.isHeld).count }

    func hasFreeConsumer(for name: String, except avoided: Int? = nil) -> Bool {
        !paused.contains(name) && consumers.contains {
            $0.key != avoided && $0.value.alive && !$0.value.quarantined && $0.value.names.contains(name)
                && $0.value.busy.count < $0.value.capacity
        }
    }

    /// Consumer `c` asked for work (DONE or READY): what was kept from it may go to it again.
    mutating func refilled(_ c: Int) {
        for (id, task) in tasks where task.avoiding == c { tasks[id]!.avoiding = nil }
    }

    /// Whether a new task from `producer` would be refused for a full queue, or for a full
    /// share of it: one producer, and one name, may hold half the bound (rounded down, at least 1).
    /// A `scheduled` task always waits, so the bounds always apply to it.
    func refusesNew(_ name: String, from producer: [UInt8], scheduled: Bool = false) -> Bool {
        let waitsSameName = tasks.values.contains { $0.phase == .waiting && $0.name == name }
        guard scheduled || waitsSameName || !hasFreeConsumer(for: name) else { return false }
        let share = max(1, maxQueued / 2)
        let held = tasks.values.filter(\.isHeld)
        return held.count >= maxQueued || held.filter { $0.owner == producer }.count >= share
            || held.filter { $0.name == name }.count >= share
    }

    /// `notBefore` (ms since the epoch): scheduled until then when that is now or later, and its
    /// timeout counted from then. `uniqueKey` ("name key") with its TTL: the task takes the key.
    mutating func submit(_ id: String, name: String, maxAttempts: UInt32, timeoutNanos: UInt64, backoffNanos: UInt64,
                         from producer: [UInt8], now: UInt64, notBefore: UInt64? = nil, uniqueKey: String? = nil,
                         uniqueTTL: UInt64 = 0) {
        arrivals += 1
        let due = notBefore.map { $0 * 1_000_000 }
        let scheduled = due.map { $0 >= now } ?? false
        let ready = scheduled ? due! : now
        tasks[id] = Task(name: name, maxAttempts: maxAttempts, timeoutAt: ready + timeoutNanos, timeoutNanos: timeoutNanos,
                         backoffNanos: backoffNanos, phase: scheduled ? .scheduled(until: ready) : .waiting,
                         arrival: arrivals, owner: producer, route: producer, uniqueKey: uniqueKey, uniqueTTL: uniqueTTL)
        if let uniqueKey { uniqueHolders[uniqueKey] = (id, arrivals) }
    }

    /// The task holding `key` ("name key") now, if one does: the same life that took it, not
    /// ended, or ended less than its TTL ago (and still kept).
    func uniqueHolder(_ key: String) -> String? {
        guard let holder = uniqueHolders[key], let task = tasks[holder.id], task.arrival == holder.life else { return nil }
        if case .ended = task.phase { return now < task.endedAt + task.uniqueTTL ? holder.id : nil }
        return holder.id
    }

    /// A submit of `id` matched the key of `holder`: it gets the holder's result, now if it has
    /// one (a redelivery), else when it ends.
    mutating func waits(_ id: String, on holder: String) {
        if case .ended = tasks[holder]!.phase { return }
        if !uniqueWaiters[holder, default: []].contains(id) { uniqueWaiters[holder, default: []].append(id) }
    }

    /// The same id submitted again by `producer`: its results go there from now on.
    mutating func resubmitted(_ id: String, by producer: [UInt8]) {
        tasks[id]?.route = producer
    }

    mutating func end(_ id: String, _ status: String, deadLetter: Bool = false) {
        let task = tasks[id]!
        tasks[id]!.phase = .ended(status)
        tasks[id]!.endedAt = now
        for waiter in uniqueWaiters.removeValue(forKey: id) ?? [] { expected.append((waiter + " " + id, status)) }
        if deadLetter {
            deadLetters.append((id, task.name, task.maxAttempts, task.timeoutNanos, task.backoffNanos, task.route))
        }
        expected.append((id, status))
        endedOrder.append((id, task.arrival))
        while endedOrder.count > retentionCount {
            let old = endedOrder.removeFirst()
            if let current = tasks[old.id], current.arrival == old.life, case .ended = current.phase {
                tasks[old.id] = nil
            }
        }
    }

    /// A dispatch the broker made: returns what is wrong with it, if anything.
    mutating func dispatched(_ id: String, to consumer: Int, attempt: UInt32, now: UInt64) -> String? {
        guard var task = tasks[id] else { return "dispatched \(id), which the model does not hold" }
        guard task.phase == .waiting else { return "dispatched \(id) while \(task.phase)" }
        guard var c = consumers[consumer], c.alive else { return "dispatched \(id) to consumer \(consumer), which was dropped" }
        guard !paused.contains(task.name) else { return "dispatched \(id) ('\(task.name)'), a paused name" }
        guard c.names.contains(task.name) else { return "dispatched \(id) ('\(task.name)') to consumer \(consumer), which does not serve it" }
        guard c.busy.count < c.capacity else { return "dispatched \(id) to consumer \(consumer) without credit (\(c.busy.count)/\(c.capacity))" }
        guard !c.quarantined else { return "dispatched \(id) to consumer \(consumer), which is quarantined" }
        guard attempt == task.attempts + 1 else { return "dispatched \(id) as attempt \(attempt); expected \(task.attempts + 1)" }
        task.attempts = attempt
        dispatches += 1
        task.dispatchNumber = dispatches
        task.phase = .held(by: consumer)
        task.avoiding = nil
        task.leaseExpiry = now + leaseNanos
        task.sentTo.insert(consumer)
        c.busy.insert(id)
        tasks[id] = task
        consumers[consumer] = c
        return nil
    }

    /// A DONE group from consumer `c` (alive or dropped).
    mutating func answered(_ id: String, by c: Int, status: String, now: UInt64) {
        if consumers[c]?.alive == true, consumers[c]!.busy.remove(id) != nil { consumers[c]!.expiredSinceAnswer = 0 }
        guard var task = tasks[id] else { return }
        if case .ended = task.phase { return }
        let holds = task.phase == .held(by: c) && consumers[c]?.alive == true
        let final = status == "ok" || status == "error"
        guard holds || (final && task.sentTo.contains(c)) else { return }
        switch status {
        case "ok", "error":
            end(id, status)
        case "retry":
            if task.attempts < task.maxAttempts {
                let doublings = min(max(task.attempts, 1) - 1, 16)
                // Up to 25 % more by an FNV-1a hash of the id and the attempt (PROTOCOL.md §8.5).
                var hash: UInt64 = 14_695_981_039_346_656_037
                for byte in Array(id.utf8) + [UInt8(truncatingIfNeeded: task.attempts)] {
                    hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211
                }
                let base = task.backoffNanos << UInt64(doublings)
                let wait = base + UInt64(Double(base) / 4 * (Double(hash >> 11) / 9_007_199_254_740_992))
                // A backoff never outlasts the task's own deadline.
                task.phase = .backoff(until: min(now + wait, task.timeoutAt))
                tasks[id] = task
            } else {
                end(id, "error", deadLetter: task.maxAttempts > 1)
            }
        case _ where revoking.remove(id) != nil: // handed back after a REVOKE: the cancel takes effect
            end(id, "cancelled")
        default: // requeue: unstarted, the attempt does not count
            task.attempts = task.attempts > 0 ? task.attempts - 1 : 0
            task.phase = .waiting
            tasks[id] = task
        }
    }

    /// RENEW from consumer `c`: the leases of those of `ids` it holds run on from `now`.
    mutating func renewed(_ ids: [String], by c: Int, now: UInt64) {
        guard consumers[c]?.alive == true else { return }
        for id in ids where tasks[id]?.phase == .held(by: c) { tasks[id]!.leaseExpiry = now + leaseNanos }
    }

    /// Leases that ran out by `now`, looked at once a second: each task is taken back (the attempt
    /// counted) or, lost too often, ends; its consumer's thread stays busy until it answers.
    mutating func reclaimLeases(now: UInt64) {
        guard now - leasesCheckedAt >= 1_000_000_000 else { return }
        leasesCheckedAt = now
        let expired = tasks.filter {
            if case .held(let c) = $0.value.phase { return consumers[c]?.alive == true && $0.value.leaseExpiry <= now }
            return false
        }.sorted { $0.value.arrival > $1.value.arrival }
        for (id, task) in expired {
            guard case .held(let c) = task.phase else { continue }
            consumers[c]!.expiredSinceAnswer += 1
            if task.attempts >= max(task.maxAttempts, Self.lostLimit) {
                end(id, "error", deadLetter: true)
            } else {
                tasks[id]!.phase = .waiting
                tasks[id]!.avoiding = c
            }
        }
    }

    mutating func dropped(_ c: Int) {
        guard consumers[c]?.alive == true else { return }
        consumers[c]!.alive = false
        consumers[c]!.busy = []
        // Newest first: the broker puts each back at the front, so the oldest ends up first.
        let held = tasks.filter { $0.value.phase == .held(by: c) }.sorted { $0.value.arrival > $1.value.arrival }
        for (id, task) in held {
            if task.attempts >= max(task.maxAttempts, Self.lostLimit) {
                end(id, "error", deadLetter: true)
            } else {
                tasks[id]!.phase = .waiting
            }
        }
    }

    /// Returns the CANCEL_REPLY the broker must give at once; `nil` for none yet: the task is
    /// reserved (every consumer announces `revoke`), and the answer comes at a tick (``settle(now:)``).
    mutating func cancel(_ id: String, now: UInt64) -> String? {
        if pendingCancels[id] != nil {
            pendingCancels[id]!.waiters += 1
            return nil
        }
        guard let task = tasks[id] else { return "unknown" }
        switch task.phase {
        case .waiting, .backoff, .scheduled:
            end(id, "cancelled")
            return "cancelled"
        case .held(let c):
            guard isReserved(id, on: c) else { return "running" }
            pendingCancels[id] = (now + 1_000_000_000, 1)
            revoking.insert(id)
            return nil
        case .ended: return "done"
        }
    }

    /// Whether held task `id` is past consumer `c`'s threads in dispatch order.
    func isReserved(_ id: String, on c: Int) -> Bool {
        guard let consumer = consumers[c], consumer.alive, consumer.busy.count > consumer.threads,
              let mine = tasks[id]?.dispatchNumber else { return false }
        let earlier = consumer.busy.filter { other in tasks[other].map { $0.dispatchNumber < mine } ?? false }.count
        return earlier >= consumer.threads
    }

    /// The cancel replies due at a tick at `now` (monotonic ns): a hand-back came (`cancelled`),
    /// the task ended otherwise (`done`) or is gone (`unknown`), it is waiting again (cancelled
    /// now), or the wait is over while it runs (`running`).
    mutating func settle(now: UInt64) -> [String] {
        var replies: [String] = []
        for (id, pending) in pendingCancels.sorted(by: { $0.key < $1.key }) {
            let reply: String
            switch tasks[id]?.phase {
            case nil: reply = "unknown"
            case .ended(let status)?: reply = !revoking.contains(id) && status == "cancelled" ? "cancelled" : "done"
            case .waiting?, .backoff?, .scheduled?:
                end(id, "cancelled")
                reply = "cancelled"
            case .held?:
                guard now >= pending.deadline else { continue }
                reply = "running"
            }
            revoking.remove(id)
            pendingCancels[id] = nil
            replies += Array(repeating: reply, count: pending.waiters)
        }
        return replies.sorted()
    }

    /// Tasks whose deadline passed end; consumers in `dropping` are dropped; backoffs that are over
    /// end. In that order, as the broker's tick does it.
    mutating func advance(to now: UInt64, dropping: [Int] = []) {
        for (id, task) in tasks.sorted(by: { ($0.value.timeoutAt, $0.value.arrival) < ($1.value.timeoutAt, $1.value.arrival) }) {
            if case .ended = task.phase { continue }
            if task.timeoutAt <= now { end(id, "timeout") }
        }
        for c in dropping { dropped(c) }
        reclaimLeases(now: now)
        for (id, task) in tasks {
            if case .backoff(let until) = task.phase, until <= now { tasks[id]!.phase = .waiting }
            if case .scheduled(let until) = task.phase, until <= now { tasks[id]!.phase = .waiting }
        }
    }

    /// Every dead letter submitted again: each a new life, waiting, unless its id is live.
    mutating func revive(now: UInt64) -> Int {
        var count = 0
        let letters = deadLetters
        deadLetters.removeAll()
        for letter in letters {
            if let current = tasks[letter.id] {
                if case .ended = current.phase {} else { continue }
            }
            arrivals += 1
            tasks[letter.id] = Task(name: letter.name, maxAttempts: letter.maxAttempts, timeoutAt: now + letter.timeoutNanos,
                                    timeoutNanos: letter.timeoutNanos, backoffNanos: letter.backoffNanos, arrival: arrivals,
                                    owner: letter.route, route: letter.route)
            count += 1
        }
        return count
    }
}

extension ReferenceModel.Task {
    /// What the queue bounds count: waiting, waiting out a backoff, or scheduled.
    var isHeld: Bool {
        switch phase {
        case .waiting, .backoff, .scheduled: true
        case .held, .ended: false
        }
    }
}
