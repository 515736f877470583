import ConveyorProtocol
import DequeModule

/// The order in which finished tasks' results are let go: bounded in count and age, the oldest
/// first. The results themselves live on the records (``TaskTable/records``).
struct ResultStore<Entry: AnyObject> {
    private var order: Deque<(entry: Entry, finishedAt: UInt64)> = []
    let capacity: Int
    let retention: UInt64

    init(capacity: Int, retentionNanoseconds: UInt64) {
        self.capacity = capacity
        self.retention = retentionNanoseconds
    }

    /// Results kept.
    var count: Int { order.count }

    /// Adds `entry`, finished at `finishedAt`; returns the entries evicted to stay within capacity.
    mutating func insert(_ entry: Entry, finishedAt: UInt64) -> [Entry] {
        order.append((entry, finishedAt))
        var evicted: [Entry] = []
        while order.count > capacity, let oldest = order.popFirst() {
            evicted.append(oldest.entry)
        }
        return evicted
    }

    /// Drops entries older than the retention and returns them.
    mutating func expire(now: UInt64) -> [Entry] {
        var expired: [Entry] = []
        // A wall clock stepped back makes results look finished in the future: they are not old.
        while let oldest = order.first, now > oldest.finishedAt, now - oldest.finishedAt > retention {
            order.removeFirst()
            expired.append(oldest.entry)
        }
        return expired
    }
}


/// A task that used up its attempts, kept for operators: `conveyor stats` lists them,
/// `conveyor dead-letters --requeue/--purge` acts on them.
struct DeadLetter {
    let id: String
    let name: String
    let attempts: UInt32
    let reason: String
    // Kept to requeue the task; not shown in stats.
    let args: [UInt8]
    let options: TaskOptions
    let producer: [UInt8]

}

/// The dead letters kept, oldest first, bounded in count (the oldest go first).
struct DeadLetters {
    private(set) var letters = Deque<DeadLetter>()
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { letters.count }

    mutating func add(_ letter: DeadLetter) {
        letters.append(letter)
        if letters.count > capacity { letters.removeFirst() }
    }

    /// Removes and returns the dead letters with `id`, or all of them when `id` is empty.
    mutating func take(id: String) -> [DeadLetter] {
        let selected = letters.filter { id.isEmpty || $0.id == id }
        letters.removeAll { id.isEmpty || $0.id == id }
        return Array(selected)
    }

    /// The newest `count`, as listed in stats.
    func newest(_ count: Int) -> [BrokerStatistics.DeadLetter] {
        letters.suffix(count).map {
            BrokerStatistics.DeadLetter(id: $0.id, name: $0.name, attempts: $0.attempts, reason: $0.reason)
        }
    }
}
