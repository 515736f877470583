import DequeModule

/// Every task not finished, in the order the broker accepted them (``TaskRecord/sequence``): the
/// one order in which `TASKS` can go through queued, scheduled and running tasks a page at a time
/// (TaskTable+Listing.swift). The table's other structures cannot serve: `records` is a hash
/// table whose order changes as it grows and shrinks, the queue's lanes take requeued tasks at
/// their front, and the timers are heaps.
///
/// What it costs the hot path: one append per accepted task (a pointer into a deque: no hashing,
/// no allocation but the deque's own growth), nothing when a task changes state, and the entries
/// of finished tasks are dropped later, off the message path: from the front once a tick
/// (``trim()``: each entry once), and, when a long-lived task at the front holds finished ones
/// behind it, by a rebuild once they outnumber the live ones (``compactIfNeeded(live:)``, the rule
/// the deadline heap follows). 8 bytes a task (the W6 memory budget is per queued task).
///
/// Sorted by sequence at all times: accepts and revivals take the next sequence, a restore
/// appends in sequence order before anything else is accepted, and entries only ever leave.
struct LiveTasks {
    private(set) var entries = Deque<TaskRecord>()

    var count: Int { entries.count }

    /// A record just made (accepted, revived or restored): the newest sequence.
    mutating func append(_ task: TaskRecord) {
        assert(entries.last.map { $0.sequence < task.sequence } ?? true, "live tasks out of sequence order")
        entries.append(task)
    }

    /// Drops finished tasks from the front.
    mutating func trim() {
        // Counted first and removed at once: cheaper than one removal per entry.
        var finished = 0
        while finished < entries.count, entries[finished].isDone { finished += 1 }
        // All of them, the common case between two ticks: keep the storage for the next ones.
        if finished == entries.count {
            entries.removeAll(keepingCapacity: true)
        } else if finished > 0 {
            entries.removeFirst(finished)
        }
    }

    /// Drops every finished task once they outnumber the live ones (`live`: tasks not done).
    mutating func compactIfNeeded(live: Int) {
        guard entries.count > 2 * live + 65_536 else { return }
        entries = Deque(entries.filter { !$0.isDone })
    }

    /// The position of the first entry whose sequence is `sequence` or later (binary search).
    func firstIndex(atOrAfter sequence: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].sequence < sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    subscript(position: Int) -> TaskRecord { entries[position] }
}
