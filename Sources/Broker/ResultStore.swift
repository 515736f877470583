import DequeModule

/// A finished task's result, its frames' bytes kept as received so they can be sent again
/// untouched (copied out of libzmq's receive buffers, which a kept frame would pin).
struct StoredResult {
    let status: [UInt8]
    let body: [UInt8]
    let info: [UInt8]
    let finishedAt: UInt64
}

/// Finished results, bounded in count and age; the oldest go first.
struct ResultStore {
    private var results: [String: StoredResult] = [:]
    private var order: Deque<(id: String, finishedAt: UInt64)> = []
    let capacity: Int
    let retention: UInt64

    init(capacity: Int, retentionNanoseconds: UInt64) {
        self.capacity = capacity
        self.retention = retentionNanoseconds
    }

    var count: Int { results.count }

    subscript(id: String) -> StoredResult? { results[id] }

    mutating func insert(_ id: String, _ result: StoredResult) -> [String] {
        if results.updateValue(result, forKey: id) == nil {
            order.append((id, result.finishedAt))
        }
        var evicted: [String] = []
        while results.count > capacity, let oldest = order.popFirst() {
            results[oldest.id] = nil
            evicted.append(oldest.id)
        }
        return evicted
    }

    /// Drops results older than the retention; returns their ids.
    mutating func expire(now: UInt64) -> [String] {
        var expired: [String] = []
        while let oldest = order.first, now &- oldest.finishedAt > retention {
            order.removeFirst()
            results[oldest.id] = nil
            expired.append(oldest.id)
        }
        return expired
    }
}

import ConveyorProtocol

/// A task that used up its attempts, kept for operators: `conveyor stats` lists them,
/// `conveyor dead-letters --requeue/--purge` acts on them.
struct DeadLetter: Encodable {
    let id: String
    let name: String
    let attempts: UInt32
    let reason: String
    // Kept to requeue the task; not shown in stats.
    let args: [UInt8]
    let options: TaskOptions
    let producer: [UInt8]

    enum CodingKeys: String, CodingKey { case id, name, attempts, reason }
}
