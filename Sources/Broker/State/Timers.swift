import HeapModule

/// A task due at a time (its deadline, or the end of a retry backoff), in wall-clock ns. Entries
/// are not removed when a task leaves the state they were made for; they are skipped when they
/// come due (or compacted away).
struct TimedTask: Comparable {
    let at: UInt64
    let task: TaskRecord
    /// Ties (scheduled tasks due at the same ms with the same timeout) go in arrival order.
    static func < (lhs: TimedTask, rhs: TimedTask) -> Bool {
        lhs.at < rhs.at || (lhs.at == rhs.at && lhs.task.sequence < rhs.task.sequence)
    }
    static func == (lhs: TimedTask, rhs: TimedTask) -> Bool { lhs.at == rhs.at && lhs.task === rhs.task }
}

/// The broker's two timers on tasks: deadlines (every task not done has one) and the ends of
/// retry backoffs ("not before"). Min-heaps, so the next due entry is found without a scan, and a
/// million pending entries cost nothing until they come due.
struct TaskTimers {
    private var deadlines = Heap<TimedTask>()
    private var notBefore = Heap<TimedTask>()

    var delayedEntries: Int { notBefore.count }

    mutating func addDeadline(_ task: TaskRecord) {
        deadlines.insert(TimedTask(at: task.deadline, task: task))
    }

    mutating func addNotBefore(_ task: TaskRecord) {
        notBefore.insert(TimedTask(at: task.notBefore, task: task))
    }

    /// Removes and returns the next entry due at `now`, if any. The caller checks that the task is
    /// still in the state the entry was made for.
    mutating func nextDeadline(dueAt now: UInt64) -> TaskRecord? {
        guard let next = deadlines.min, next.at <= now else { return nil }
        return deadlines.removeMin().task
    }

    /// Like ``nextDeadline(dueAt:)`` for backoffs; returns the time the entry was made for too, so
    /// that an entry of an older backoff of the same task is told apart.
    mutating func nextNotBefore(dueAt now: UInt64) -> (task: TaskRecord, at: UInt64)? {
        guard let next = notBefore.min, next.at <= now else { return nil }
        notBefore.removeMin()
        return (next.task, next.at)
    }

    /// Entries of finished tasks stay in the deadline heap until they come due; at high
    /// throughput with long timeouts that is millions of them. Rebuilds the heap from the live
    /// entries once the stale ones dominate.
    mutating func compactIfNeeded(active: Int) {
        guard deadlines.count > 2 * active + 65_536 else { return }
        deadlines = Heap(deadlines.unordered.filter { !$0.task.isDone })
    }
}
