import ConveyorProtocol

/// Delayed tasks (`not_before`, docs/PROTOCOL.md §8.12): a task accepted with a time still ahead
/// waits in state `delayed` with its attempts at 0 (a *scheduled* task, as a retry backoff waits
/// with attempts ≥ 1), in the timers' not-before heap, not in the queue: a million of them cost
/// the dispatch of ready tasks nothing until they come due. `promoteBackoffs` queues each when
/// its time comes, at the back of its queue (a retry goes to the front), and its deadline
/// counts from that time.
extension TaskTable {
    /// When a task accepted at `now` with `options` waits for (wall-clock ns): its `not_before`
    /// time if that is `now` or later (the journal's replay tells such a task by its deadline
    /// counted from that time: RecoveredState.scheduledTime), `nil` when it is ready now.
    static func scheduledTime(_ options: TaskOptions, now: UInt64) -> UInt64? {
        guard let milliseconds = options.notBefore else { return nil }
        // Far past any real time (the engine refuses more than a year ahead); kept clear of
        // overflow when the deadline is added.
        let due = min(milliseconds, UInt64.max / 2_000_000) &* 1_000_000
        return due >= now ? due : nil
    }

    /// (new) → delayed: a task just accepted whose `not_before` time (`readyAt`) is still ahead.
    mutating func schedule(_ task: TaskRecord, until readyAt: UInt64) {
        guard task.isQueued, task.attempts == 0 else { return refuse(.schedule) }
        move(task, to: .delayed)
        task.notBefore = readyAt
        timers.addNotBefore(task)
        counted(.schedule)
        if journaling { journal.delayed(id: task.id, attempts: 0, notBefore: readyAt) }
    }

    /// When a scheduled task comes due (wall-clock ns), for `STATUS` and `TASKS`: its
    /// `not_before` time; `nil` for a task that is not scheduled.
    func dueTime(of task: TaskRecord) -> UInt64? {
        task.isDelayed ? task.notBefore : nil
    }
}
