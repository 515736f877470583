import HeapModule

/// A uniqueness key and the task holding it.
struct UniqueHold {
    let task: TaskRecord
    /// Wall-clock ns until which the key stays held: `.max` while the task is not finished, its
    /// end plus its `unique_ttl_ms` once it is.
    var until: UInt64
}

/// A submit that matched a held key: its producer gets the holder's result under `id` (the id it
/// submitted), sent as `id HOLDER` (docs/PROTOCOL.md §8.12).
struct UniqueWaiter {
    let producer: [UInt8]
    let id: String
}

/// When a finished task's hold on a key ends.
private struct UniqueExpiry: Comparable {
    let at: UInt64
    let key: String
    static func < (lhs: UniqueExpiry, rhs: UniqueExpiry) -> Bool { lhs.at < rhs.at }
}

/// Uniqueness keys (`unique_key`) and the tasks that hold them: at most one task per scope (the
/// submitting identity where clients are authenticated, else one for all), task name and key.
/// Bounded by the tasks the broker holds: a key goes when its task's TTL after its end passes
/// (looked at every tick, from a min-heap), when its result is let go, or when a lookup finds it
/// stale. Not journaled on its own: a task's key is in its options, so a restart rebuilds the
/// holds from the tasks (TaskTable+Unique.swift). The waiters are not kept across a restart:
/// their producers submit again and match again.
struct UniqueKeys {
    private(set) var holds: [String: UniqueHold] = [:]
    private var expiries = Heap<UniqueExpiry>()
    /// Producers waiting for a held task's result through a submit that matched its key, by the
    /// held task's id.
    private(set) var waiters: [String: [UniqueWaiter]] = [:]

    /// Submits that may wait on one task through its key; past that a matching submit is refused.
    static let maxWaitersPerTask = 1_000

    var count: Int { holds.count }

    /// The map's key: scope, name and key, apart by bytes no id, name or key contains.
    static func key(scope: String, name: String, key: String) -> String {
        scope + "\u{0}" + name + "\u{0}" + key
    }

    static func key(of task: TaskRecord) -> String? {
        task.options.uniqueKey.map { key(scope: task.submitter ?? "", name: task.name, key: $0) }
    }

    /// The hold on `key`, whatever its state; ``TaskTable/uniqueHolder(scope:name:key:now:)``
    /// decides whether it still counts.
    func hold(of key: String) -> UniqueHold? { holds[key] }

    mutating func release(_ key: String) { holds[key] = nil }

    mutating func hold(_ key: String, by task: TaskRecord, until: UInt64 = .max) {
        holds[key] = UniqueHold(task: task, until: until)
        if until != .max { expiries.insert(UniqueExpiry(at: until, key: key)) }
    }

    /// `task`, holding `key`, finished at `now`: it keeps the key for its TTL (none: it lets it go
    /// now). Returns the submits that waited on it.
    mutating func finished(_ task: TaskRecord, key: String, now: UInt64) -> [UniqueWaiter] {
        if let hold = holds[key], hold.task === task {
            let ttl = UInt64(task.options.uniqueTTLMilliseconds) &* 1_000_000
            if ttl == 0 {
                holds[key] = nil
            } else {
                self.hold(key, by: task, until: now &+ ttl)
            }
        }
        return waiters.removeValue(forKey: task.id) ?? []
    }

    /// `task`'s result was let go: its key goes with it.
    mutating func evicted(_ task: TaskRecord) {
        if let key = Self.key(of: task), let hold = holds[key], hold.task === task { holds[key] = nil }
        waiters[task.id] = nil
    }

    /// A submit of `id` from `producer` matched the key of `task`, not finished: it waits for its
    /// result. Once per id (a resubmission replaces the route); `false` when too many wait.
    mutating func wait(on task: TaskRecord, producer: [UInt8], id: String) -> Bool {
        var list = waiters[task.id] ?? []
        if let index = list.firstIndex(where: { $0.id == id }) {
            list[index] = UniqueWaiter(producer: producer, id: id)
        } else {
            guard list.count < Self.maxWaitersPerTask else { return false }
            list.append(UniqueWaiter(producer: producer, id: id))
        }
        waiters[task.id] = list
        return true
    }

    /// Lets go the keys whose finished task's TTL has passed by `now`.
    mutating func expire(now: UInt64) {
        while let next = expiries.min, next.at <= now {
            expiries.removeMin()
            if let hold = holds[next.key], hold.until <= now { holds[next.key] = nil }
        }
    }
}
