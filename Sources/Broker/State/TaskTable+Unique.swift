import ConveyorJournal
import ConveyorProtocol

/// Unique tasks (`unique_key`, docs/PROTOCOL.md §8.12): the table's side of ``UniqueKeys``.
extension TaskTable {
    /// The task holding `key` for tasks named `name` (in `scope`: the submitting identity, or ""),
    /// if one does at `now`: not finished, or finished less than its TTL ago and still kept.
    mutating func uniqueHolder(scope: String, name: String, key: String, now: UInt64) -> TaskRecord? {
        let composite = UniqueKeys.key(scope: scope, name: name, key: key)
        guard let hold = unique.hold(of: composite) else { return nil }
        if hold.until > now, records[hold.task.id] === hold.task { return hold.task }
        unique.release(composite)
        return nil
    }

    /// A task with a key ended: the key stays for its TTL, and every submit that matched it gets
    /// the result, under its own id and the task's (`SUBMITTED HOLDER`).
    mutating func uniqueFinished(_ task: TaskRecord, now: UInt64) {
        guard let key = UniqueKeys.key(of: task) else { return }
        let waiting = unique.finished(task, key: key, now: now)
        guard let stored = task.result else { return }
        for waiter in waiting {
            outbox.result(id: waiter.id + " " + task.id, stored, to: waiter.producer, redelivery: false)
        }
    }

    /// After a restore: every task with a key holds it again, a finished one until its end plus
    /// its TTL (a lookup lets it go if that has passed while the broker was down).
    mutating func restoreUniqueKeys(_ state: RecoveredState) {
        for entry in state.tasks.values {
            // The owner from the entry: the loop sets submitters after the restore.
            guard let uniqueKey = entry.options.uniqueKey, let task = records[entry.id] else { continue }
            let key = UniqueKeys.key(scope: entry.owner ?? "", name: entry.name, key: uniqueKey)
            if task.isDone {
                guard let finishedAt = entry.result?.finishedAt, task.options.uniqueTTLMilliseconds > 0 else { continue }
                let until = finishedAt &+ UInt64(task.options.uniqueTTLMilliseconds) &* 1_000_000
                if let held = unique.hold(of: key), held.until >= until { continue }
                unique.hold(key, by: task, until: until)
            } else {
                unique.hold(key, by: task)
            }
        }
    }
}
