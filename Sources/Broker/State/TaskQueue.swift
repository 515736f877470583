import DequeModule
import HeapModule

/// Where accepted tasks wait for a consumer. The broker talks to its queue only through this
/// interface, so that a durable store can sit under it later.
///
/// Order: higher priority first; between task names of equal priority, the one with the least
/// weighted service (stride scheduling: with equal weights, the one served longest ago); within a name and priority, producer identities in turn, each first-in first-out; a
/// requeued task goes to the front of its producer's turn.
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

/// One priority of one task name: a FIFO per producer identity (a lane per ``ShareAccount``),
/// the lanes served in turn, so that a producer's tasks are not stuck behind another's backlog.
/// Entries of tasks that left the queued state are skipped (and dropped) lazily.
///
/// Lanes are objects, found by hashing only when a task is added (and not even then when it is
/// the same producer's as the last one): taking the next task hashes nothing. An emptied lane
/// leaves the turn but is kept for its producer's next task, unless the bucket has many lanes.
struct PriorityBucket {
    final class Lane {
        let owner: ObjectIdentifier
        var tasks = Deque<TaskRecord>()
        /// Whether it is in ``PriorityBucket/turn`` (it has entries).
        var waiting = false

        init(owner: ObjectIdentifier) { self.owner = owner }
    }

    private var lanes: [ObjectIdentifier: Lane] = [:]
    /// Lanes with entries, the next to serve first.
    private var turn = Deque<Lane>()
    private var lastLane: Lane?
    /// Kept lanes beyond this many are dropped once empty.
    private static let keptLanes = 64

    var isEmpty: Bool { turn.isEmpty }

    /// At the back of its producer's lane, or at the front for a task that was already on its way
    /// once (a lane new to the turn takes it after the others either way).
    mutating func insert(_ task: TaskRecord, atFront: Bool) {
        let owner = ObjectIdentifier(task.owner)
        let lane: Lane
        if let last = lastLane, last.owner == owner {
            lane = last
        } else if let known = lanes[owner] {
            lane = known
        } else {
            lane = Lane(owner: owner)
            lanes[owner] = lane
        }
        lastLane = lane
        if !lane.waiting {
            lane.waiting = true
            turn.append(lane)
        }
        if atFront { lane.tasks.prepend(task) } else { lane.tasks.append(task) }
    }

    /// The next live task; `dropped` counts the removed entries skipped on the way.
    mutating func first(dropped: inout Int) -> TaskRecord? {
        while let lane = turn.first {
            while let task = lane.tasks.first {
                if task.isQueued { return task }
                lane.tasks.removeFirst()
                dropped += 1
            }
            turn.removeFirst()
            leave(lane)
        }
        return nil
    }

    /// Removes the task ``first(dropped:)`` returned; its lane's turn passes to the next lane.
    mutating func removeFirst() -> TaskRecord {
        let lane = turn.first!
        let task = lane.tasks.removeFirst()
        if lane.tasks.isEmpty {
            turn.removeFirst()
            leave(lane)
        } else if turn.count > 1 {
            turn.removeFirst()
            turn.append(lane)
        }
        return task
    }

    /// An emptied lane leaves the turn; kept for its producer's next task while lanes are few.
    private mutating func leave(_ lane: Lane) {
        lane.waiting = false
        if lanes.count > Self.keptLanes {
            lanes[lane.owner] = nil
            if lastLane === lane { lastLane = nil }
        }
    }

    /// The first live task of each lane (each lane is first-in first-out): where the oldest is.
    var heads: [TaskRecord] {
        turn.compactMap { $0.tasks.first(where: \.isQueued) }
    }

    /// Drops the entries of tasks no longer queued; returns how many are left.
    mutating func compact() -> Int {
        var left = 0
        for lane in turn {
            lane.tasks = Deque(lane.tasks.filter(\.isQueued))
            left += lane.tasks.count
        }
        for lane in turn where lane.tasks.isEmpty { leave(lane) }
        turn = Deque(turn.filter { !$0.tasks.isEmpty })
        return left
    }
}

/// The in-memory queue: per task name, one ``PriorityBucket`` per priority. The dispatch rule
/// (docs/ARCHITECTURE.md): the highest priority first; among the names a consumer serves at that
/// priority, the lowest pass (each dispatch adds the unit stride over the name's weight; with
/// equal weights that is the one served longest ago); within a name and priority, producer identities in turn,
/// each first-in first-out.
struct MemoryTaskQueue: TaskQueue {
    private struct NameQueue {
        /// Priorities present (a max-heap: a new priority costs O(log P), not O(P), so that many
        /// distinct priorities cannot make the queue quadratic). Each has a bucket; a bucket
        /// emptied is dropped with its priority when it comes to the top.
        var priorities = Heap<Int32>()
        var buckets: [Int32: PriorityBucket] = [:]
        /// Live tasks (entries of removed tasks are skipped lazily).
        var live = 0
        var entries = 0
        /// The name's virtual time (stride scheduling): each task taken adds `stride`, the unit
        /// stride over the name's weight; between names of equal priority the lowest pass goes
        /// first, so weight 2 gets twice the dispatches of weight 1. A name that starts waiting
        /// begins at the queue's current virtual time: waiting earns no credit.
        var pass: UInt64
        var stride: UInt64
        /// When a task of this name was last taken (``MemoryTaskQueue/clock``): between names of
        /// equal pass, the one served longest ago goes first.
        var servedAt: UInt64 = 0

        init(pass: UInt64, stride: UInt64) {
            self.pass = pass
            self.stride = stride
        }

        /// `floor`: the queue's virtual time, where the name's pass starts if nothing of it waits.
        mutating func insert(_ task: TaskRecord, atFront: Bool, floor: UInt64) {
            if live == 0 { pass = max(pass, floor) }
            let priority = task.options.priority
            if buckets[priority] == nil {
                buckets[priority] = PriorityBucket()
                priorities.insert(priority)
            }
            buckets[priority]!.insert(task, atFront: atFront)
            live += 1
            entries += 1
        }

        /// The best live task, dropping removed entries on the way.
        mutating func peek() -> (TaskRecord, Int32)? {
            while let priority = priorities.max {
                var dropped = 0
                let first = buckets[priority]!.first(dropped: &dropped)
                entries -= dropped
                if let first { return (first, priority) }
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
            entries = 0
            for priority in Array(buckets.keys) {
                entries += buckets[priority]!.compact()
            }
        }
    }

    private var queues: [String: NameQueue] = [:]
    private(set) var count = 0
    /// Counts the tasks taken, to order names by when they were last served.
    private var clock: UInt64 = 0
    /// The pass of the name served last: where a name that starts waiting begins.
    private var virtualTime: UInt64 = 0
    /// Weights other than 1 (`conveyor limit NAME --weight W`).
    private var weights: [String: Int] = [:]
    /// The stride of weight 1: divisible by every weight up to 16, so small weights are exact.
    static let unitStride: UInt64 = 720_720

    private func stride(of name: String) -> UInt64 {
        weights.isEmpty ? Self.unitStride : Self.unitStride / UInt64(weights[name] ?? 1)
    }

    /// Sets the weight of `name` (1-1,000) for its next dispatches.
    mutating func setWeight(_ name: String, _ weight: Int) {
        weights[name] = weight == 1 ? nil : weight
        queues[name]?.stride = Self.unitStride / UInt64(max(1, weight))
    }

    var countsByName: [String: Int] {
        queues.compactMapValues { $0.live > 0 ? $0.live : nil }
    }

    /// The earliest acceptance time (wall-clock ns) of a task waiting, by name: for the age of
    /// the oldest queued task in `STATS`. Looks at the head of every lane, not every task.
    var oldestAcceptance: [String: UInt64] {
        var oldest: [String: UInt64] = [:]
        for (name, queue) in queues where queue.live > 0 {
            for bucket in queue.buckets.values {
                for task in bucket.heads {
                    let accepted = task.deadline &- UInt64(task.options.timeoutMilliseconds) &* 1_000_000
                    oldest[name] = min(oldest[name] ?? .max, accepted)
                }
            }
        }
        return oldest
    }

    mutating func append(_ task: TaskRecord) {
        let (floor, stride) = (virtualTime, stride(of: task.name))
        queues[task.name, default: NameQueue(pass: floor, stride: stride)].insert(task, atFront: false, floor: floor)
        count += 1
    }

    mutating func prepend(_ task: TaskRecord) {
        let (floor, stride) = (virtualTime, stride(of: task.name))
        queues[task.name, default: NameQueue(pass: floor, stride: stride)].insert(task, atFront: true, floor: floor)
        count += 1
    }

    func hasWaiting(named name: String) -> Bool {
        (queues[name]?.live ?? 0) > 0
    }

    mutating func popFirst(among names: Set<String>) -> TaskRecord? {
        var best: (name: String, task: TaskRecord, priority: Int32, pass: UInt64, servedAt: UInt64)?
        for name in names {
            guard queues[name] != nil, queues[name]!.live > 0, let (task, priority) = queues[name]!.peek() else {
                continue
            }
            let pass = queues[name]!.pass, servedAt = queues[name]!.servedAt
            if let current = best {
                if priority != current.priority ? priority > current.priority
                    : pass != current.pass ? pass < current.pass
                    : servedAt != current.servedAt ? servedAt < current.servedAt
                    : task.sequence < current.task.sequence {
                    best = (name, task, priority, pass, servedAt)
                }
            } else {
                best = (name, task, priority, pass, servedAt)
            }
        }
        guard let best else { return nil }
        count -= 1
        clock += 1
        queues[best.name]!.servedAt = clock
        virtualTime = max(virtualTime, best.pass)
        queues[best.name]!.pass = best.pass &+ queues[best.name]!.stride
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
