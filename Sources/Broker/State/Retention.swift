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
    /// Entries let go since the start: the position of the oldest kept one, counted from the
    /// first ever inserted. Entries only leave from the front, so a position names the same entry
    /// for as long as it is kept (the cursor of a `TASKS` listing, TaskTable+Listing.swift).
    private(set) var startPosition = 0

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
            startPosition += 1
            evicted.append(oldest.entry)
        }
        return evicted
    }

    /// One past the position of the newest entry.
    var endPosition: Int { startPosition + order.count }

    /// The entry at `position` (``startPosition`` ..< ``endPosition``) and when it finished.
    subscript(position position: Int) -> (entry: Entry, finishedAt: UInt64) {
        let kept = order[position - startPosition]
        return (kept.entry, kept.finishedAt)
    }

    /// Drops entries older than the retention and returns them.
    mutating func expire(now: UInt64) -> [Entry] {
        var expired: [Entry] = []
        // A wall clock stepped back makes results look finished in the future: they are not old.
        while let oldest = order.first, now > oldest.finishedAt, now - oldest.finishedAt > retention {
            order.removeFirst()
            bytes -= oldest.bytes
            startPosition += 1
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
    /// When it was accepted and when it was dead-lettered (wall-clock ns), for `TASKS`; `nil`
    /// for a dead letter restored from the journal, whose records do not carry them.
    var acceptedAt: UInt64?
    var at: UInt64?
    /// Its place in the order dead letters came in (``DeadLetters/add(_:)`` numbers them): the
    /// cursor of a `TASKS` listing of dead letters.
    var number: UInt64 = 0
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

    /// Numbers given so far: the next letter gets the next one, so ``letters`` is in number order.
    private var numbered: UInt64 = 0

    mutating func add(_ letter: DeadLetter) {
        var letter = letter
        numbered += 1
        letter.number = numbered
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

    /// The position of the first letter numbered `number` or later (binary search: letters leave
    /// from anywhere, but those left keep their order).
    func firstIndex(numberedAtLeast number: UInt64) -> Int {
        var low = 0
        var high = letters.count
        while low < high {
            let middle = (low + high) / 2
            if letters[middle].number < number { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The newest `count`, as listed in stats.
    func newest(_ count: Int) -> [BrokerStatistics.DeadLetter] {
        letters.suffix(count).map {
            BrokerStatistics.DeadLetter(id: $0.id, name: $0.name, attempts: $0.attempts, reason: $0.reason)
        }
    }
}
