import ConveyorProtocol
import Foundation

/// Global limits per task name (`conveyor limit`, `LIMIT`, docs/PROTOCOL.md §4.8.5), enforced
/// where every dispatch happens, so they hold across every consumer process and host:
///
/// - **rate**: a token bucket of `burst` tokens refilled at `rate` per second; each dispatch takes
///   one. Out of tokens, the name is blocked until the bucket has one again (the engine's tick,
///   every 50 ms at most, looks at ``NameLimits/nextTokenDue``).
/// - **concurrency**: at most N tasks of the name dispatched and not finished, counted from the
///   move into `running` to the move out of it (a reserved task in a prefetch buffer counts: it
///   holds a slot). At N the name is blocked; a task of it leaving `running` unblocks it, and the
///   engine hands its waiting tasks out at the end of that message (``settleLimits(now:)``).
/// - **weight**: the name's stride in the queue's fair order (TaskQueue.swift), no gate.
///
/// A blocked name is left out of `route` and `refill` exactly as a paused one is, so other names
/// dispatch as before: no head-of-line blocking. Limits are journaled (a `limit` record, and in
/// every snapshot) and survive a restart.
extension TaskTable {
    /// Whether tasks of `name` are not dispatched now (paused, or at a limit). An empty set
    /// answers without hashing the name: the hot path.
    @inline(__always)
    func isBlocked(_ name: String) -> Bool {
        !nameLimits.blocked.isEmpty && nameLimits.blocked.contains(name)
    }

    /// The names `consumer` serves whose tasks may be dispatched now.
    func dispatchableNames(of consumer: ConsumerRecord) -> Set<String> {
        let blocked = nameLimits.blocked
        return blocked.isEmpty || blocked.isDisjoint(with: consumer.names) ? consumer.names : consumer.names.subtracting(blocked)
    }

    /// Sets `name`'s limits (`nil`, or limits with nothing limited: clears them). Returns whether
    /// that changed them. The caller has checked ``NameLimit/problem``.
    @discardableResult
    mutating func setLimit(_ name: String, _ limit: NameLimit?, now: UInt64) -> Bool {
        let new = limit.flatMap { $0.isEmpty ? nil : $0 }
        guard nameLimits.limits[name] != new else { return false }
        nameLimits.limits[name] = new
        queue.setWeight(name, new?.weight ?? 1)
        if let new, new.rate != nil || new.concurrency != nil {
            if let gate = nameLimits.gates[name] {
                let rateChanged = gate.limit.rate != new.rate || gate.limit.bucketSize != new.bucketSize
                gate.limit = new
                if rateChanged { gate.tokens = min(gate.tokens, Double(new.bucketSize)) }
            } else {
                let gate = NameGate(limit: new, now: now)
                gate.running = dispatchedCount(named: name)
                nameLimits.gates[name] = gate
            }
        } else {
            nameLimits.gates[name] = nil
        }
        if journaling {
            journal.limit(name: name, json: new.map { Array((try? JSONEncoder().encode($0)) ?? Data()) } ?? [])
        }
        reevaluate(name, now: now)
        return true
    }

    /// Blocks or unblocks `name` by its pause and its gate; an unblocked name's waiting tasks go
    /// to the consumers serving it that have credit, at once.
    mutating func reevaluate(_ name: String, now: UInt64) {
        let gate = nameLimits.gates[name]
        let hold = gate?.hold(now: now)
        if let gate, hold != gate.heldBy {
            if hold != nil { gate.throttled += 1 }
            gate.heldBy = hold
        }
        if hold == .rate, let gate { nameLimits.nextTokenDue = min(nameLimits.nextTokenDue, gate.tokenDue()) }
        if hold != nil || paused.contains(name) {
            nameLimits.block(name)
        } else if isBlocked(name) {
            nameLimits.unblock(name)
            for consumer in consumers.serving(name) { refill(consumer, now: now) }
        }
    }

    /// A task of a gated name was dispatched: it takes a token and a slot.
    mutating func gateDispatched(_ task: TaskRecord, now: UInt64) {
        guard let gate = nameLimits.gates[task.name] else { return }
        gate.running += 1
        if gate.limit.rate != nil {
            gate.refill(now: now)
            gate.tokens -= 1
        }
        if gate.hold(now: now) != nil { reevaluate(task.name, now: now) }
    }

    /// A task of a gated name left `running` (from ``move(_:to:)``, which cannot dispatch): a
    /// name held by its concurrency is looked at again at the end of the message.
    mutating func gateReleased(_ task: TaskRecord) {
        guard let gate = nameLimits.gates[task.name] else { return }
        gate.running -= 1
        if gate.heldBy == .concurrency { nameLimits.reopened.append(task.name) }
    }

    /// Whether ``settleLimits(now:)`` has anything to do at `now`.
    @inline(__always)
    func limitsNeedSettling(now: UInt64) -> Bool {
        !nameLimits.reopened.isEmpty || now >= nameLimits.nextTokenDue
    }

    /// Unblocks the names a finished task freed a slot of, and those whose bucket has a token
    /// again, handing their waiting tasks out. The engine calls it after each message and tick.
    mutating func settleLimits(now: UInt64) {
        if !nameLimits.reopened.isEmpty {
            let names = Set(nameLimits.reopened)
            nameLimits.reopened.removeAll()
            for name in names.sorted() { reevaluate(name, now: now) }
        }
        if now >= nameLimits.nextTokenDue {
            nameLimits.nextTokenDue = .max
            for (name, gate) in nameLimits.gates where gate.heldBy == .rate { reevaluate(name, now: now) }
        }
    }

    /// Tasks of `name` dispatched now (running or reserved), counted over the consumers' tasks.
    func dispatchedCount(named name: String) -> Int {
        var count = 0
        for consumer in consumers.consumers.values {
            for id in consumer.inFlight where records[id]?.name == name && records[id]?.holder == consumer.key { count += 1 }
        }
        return count
    }

    /// Every limited name and where it stands, by name (for `STATS` and `LIMIT_REPLY`).
    func limitFigures(now: UInt64) -> [LimitFigures] {
        nameLimits.limits.keys.sorted().compactMap { limitFigures(of: $0, now: now) }
    }

    func limitFigures(of name: String, now: UInt64) -> LimitFigures? {
        guard let limit = nameLimits.limits[name] else { return nil }
        let gate = nameLimits.gates[name]
        gate?.refill(now: now)
        return LimitFigures(name: name, limit: limit, running: gate?.running ?? dispatchedCount(named: name),
                            tokens: limit.rate == nil ? nil : gate.map { Int(max(0, $0.tokens)) },
                            heldBy: gate?.heldBy?.rawValue, throttled: gate?.throttled ?? 0)
    }

    /// The limits recovered from the journal, set again before any consumer is heard from.
    mutating func restoreLimits(_ recovered: [String: [UInt8]], now: UInt64) {
        for (name, json) in recovered {
            guard let limit = try? JSONDecoder().decode(NameLimit.self, from: Data(json)), limit.problem == nil else { continue }
            let wasJournaling = journaling
            journaling = false
            setLimit(name, limit, now: now)
            journaling = wasJournaling
        }
    }
}
