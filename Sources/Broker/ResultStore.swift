import DequeModule

/// A finished task's result, kept on its record: its frames' bytes as received, to be sent again
/// untouched. A class, so that a record waiting in the queue pays 8 bytes for it, not 24.
final class StoredResult {
    let status: TaskStatus
    let body: [UInt8]
    let info: [UInt8]

    init(status: TaskStatus, body: [UInt8], info: [UInt8]) {
        self.status = status
        self.body = body
        self.info = info
    }
}

/// The order in which finished tasks' results are let go: bounded in count and age, the oldest
/// first. The results themselves live on the records (one dictionary, the broker's `tasks`).
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
        while let oldest = order.first, now &- oldest.finishedAt > retention {
            order.removeFirst()
            expired.append(oldest.entry)
        }
        return expired
    }
}

import ConveyorProtocol
import ConveyorSystem

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
