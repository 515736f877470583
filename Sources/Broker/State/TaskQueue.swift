import DequeModule
import HeapModule

/// Where accepted tasks wait for a consumer. The broker talks to its queue only through this
/// interface, so that a durable store can sit under it later.
///
/// Order: higher priority first; first-in first-out within a priority; a requeued task goes to
/// the front of its priority.
protocol TaskQueue {
    /// Tasks waiting, in all.
    var count: Int { get }
    /// Tasks waiting, per task name.
    var countsByName: [String: Int] { get }
    mutating func append(_ task: TaskRecord)
    mutating func prepend(_ task: TaskRecord)
    /// Removes and returns the next task whose name is in `names`.
    mutating func popFirst(among names: Set<String>) -> TaskRecord?
    /// Whether a task named `name` is waiting.
    func hasWaiting(named name: String) -> Bool
    /// Forgets `task`, which has left the queued state (cancelled or timed out).
    mutating func remove(_ task: TaskRecord)
}

/// The in-memory queue: per task name, one FIFO per priority.
struct MemoryTaskQueue: TaskQueue {
    private struct NameQueue {
        /// Priorities present (a max-heap: a new priority costs O(log P), not O(P), so that many
        /// distinct priorities cannot make the queue quadratic). Each has a bucket; a bucket
        /// emptied is dropped with its priority when it comes to the top.
        var priorities = Heap<Int32>()
        var buckets: [Int32: Deque<TaskRecord>] = [:]
        /// Live tasks (entries of removed tasks are skipped lazily).
        var live = 0
        var entries = 0

        mutating func insert(_ task: TaskRecord, atFront: Bool) {
            let priority = task.options.priority
            if buckets[priority] == nil {
                buckets[priority] = Deque()
                priorities.insert(priority)
            }
            if atFront { buckets[priority]!.prepend(task) } else { buckets[priority]!.append(task) }
            live += 1
            entries += 1
        }

        /// The best live task, dropping removed entries on the way.
        mutating func peek() -> (TaskRecord, Int32)? {
            while let priority = priorities.max {
                while let first = buckets[priority]!.first {
                    if first.isQueued { return (first, priority) }
                    buckets[priority]!.removeFirst()
                    entries -= 1
                }
                buckets[priority] = nil
                _ = priorities.removeMax()
            }
            return nil
        }

        mutating func pop(priority: Int32) -> TaskRecord {
            entries -= 1
            live -= 1
            return buckets[priority]!.removeFirst()
        }

        /// Rebuilds the buckets without removed entries once they outnumber live ones.
        mutating func compactIfNeeded() {
            guard entries > 2 * live + 64 else { return }
            for priority in Array(buckets.keys) {
                buckets[priority] = Deque(buckets[priority]!.filter(\.isQueued))
            }
            entries = live
        }
    }

    private var queues: [String: NameQueue] = [:]
    private(set) var count = 0

    var countsByName: [String: Int] {
        queues.compactMapValues { $0.live > 0 ? $0.live : nil }
    }

    mutating func append(_ task: TaskRecord) {
        queues[task.name, default: NameQueue()].insert(task, atFront: false)
        count += 1
    }

    mutating func prepend(_ task: TaskRecord) {
        queues[task.name, default: NameQueue()].insert(task, atFront: true)
        count += 1
    }

    func hasWaiting(named name: String) -> Bool {
        (queues[name]?.live ?? 0) > 0
    }

    mutating func popFirst(among names: Set<String>) -> TaskRecord? {
        var best: (name: String, task: TaskRecord, priority: Int32)?
        for name in names {
            guard queues[name] != nil, queues[name]!.live > 0, let (task, priority) = queues[name]!.peek() else {
                continue
            }
            if let current = best {
                if priority > current.priority || (priority == current.priority && task.sequence < current.task.sequence) {
                    best = (name, task, priority)
                }
            } else {
                best = (name, task, priority)
            }
        }
        guard let best else { return nil }
        count -= 1
        let task = queues[best.name]!.pop(priority: best.priority)
        if queues[best.name]!.live == 0 && queues[best.name]!.entries == 0 { queues[best.name] = nil }
        return task
    }

    mutating func remove(_ task: TaskRecord) {
        guard queues[task.name] != nil else { return }
        queues[task.name]!.live -= 1
        count -= 1
        if queues[task.name]!.live == 0 {
            queues[task.name] = nil
        } else {
            queues[task.name]!.compactIfNeeded()
        }
    }
}
