import ConveyorProtocol
import DequeModule

/// The order in which finished tasks' results are let go: bounded in count, bytes and age, the
/// oldest first (the newest one is always kept). The results themselves live on the records
/// (``TaskTable/records``).
struct ResultStore<Entry: AnyObject> {
    private var order: Deque<(entry: Entry, finishedAt: UInt64, bytes: Int)> = []
    let capacity: Int
    let byteCapacity: Int
    let retention: UInt64
    /// Bytes of the results kept.
    private(set) var bytes = 0

    init(capacity: Int, byteCapacity: Int = .max, retentionNanoseconds: UInt64) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
        self.retention = retentionNanoseconds
    }

    /// Results kept.
    var count: Int { order.count }

    /// Adds `entry` (`size` bytes), finished at `finishedAt`; returns the entries evicted to stay
    /// within capacity.
    mutating func insert(_ entry: Entry, finishedAt: UInt64, size: Int = 0) -> [Entry] {
        order.append((entry, finishedAt, size))
        bytes += size
        var evicted: [Entry] = []
        while order.count > capacity || (bytes > byteCapacity && order.count > 1), let oldest = order.popFirst() {
            bytes -= oldest.bytes
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
            bytes -= oldest.bytes
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

/// The dead letters kept, oldest first, bounded in count and in bytes of args (the oldest go
/// first; the newest is always kept).
struct DeadLetters {
    private(set) var letters = Deque<DeadLetter>()
    let capacity: Int
    let byteCapacity: Int
    /// Bytes of args kept.
    private(set) var bytes = 0

    init(capacity: Int, byteCapacity: Int = .max) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    var count: Int { letters.count }

    mutating func add(_ letter: DeadLetter) {
        letters.append(letter)
        bytes += letter.args.count
        while letters.count > capacity || (bytes > byteCapacity && letters.count > 1), let oldest = letters.popFirst() {
            bytes -= oldest.args.count
        }
    }

    /// Removes and returns the dead letters with `id`, or all of them when `id` is empty.
    mutating func take(id: String) -> [DeadLetter] {
        let selected = letters.filter { id.isEmpty || $0.id == id }
        letters.removeAll { id.isEmpty || $0.id == id }
        bytes -= selected.reduce(0) { $0 + $1.args.count }
        return Array(selected)
    }

    /// The newest `count`, as listed in stats.
    func newest(_ count: Int) -> [BrokerStatistics.DeadLetter] {
        letters.suffix(count).map {
            BrokerStatistics.DeadLetter(id: $0.id, name: $0.name, attempts: $0.attempts, reason: $0.reason)
        }
    }
}
