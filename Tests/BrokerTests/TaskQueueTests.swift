@testable import ConveyorBroker
import ConveyorProtocol
import Testing

@Suite("Broker queue and result store")
struct TaskQueueTests {
    private var sequence: UInt64 = 0
    private var shares = Shares()

    private mutating func task(_ id: String, name: String = "echo", priority: Int32 = 0, from producer: UInt8 = 1) -> TaskRecord {
        sequence += 1
        return TaskRecord(id: id, name: name, args: Array("{}".utf8), options: TaskOptions(priority: priority),
                          producer: [producer], owner: shares.producer([producer]), nameShare: shares.name(name),
                          sequence: sequence, now: 0)
    }

    @Test("tasks leave highest priority first, first-in first-out within a priority")
    mutating func priorityThenFIFO() {
        var queue = MemoryTaskQueue()
        for (id, priority) in [("a", 0), ("b", 5), ("c", 0), ("d", 9), ("e", 5)] {
            queue.append(task(id, priority: Int32(priority)))
        }
        #expect(queue.count == 5)
        let order = (0..<5).compactMap { _ in queue.popFirst(among: ["echo"])?.id }
        #expect(order == ["d", "b", "e", "a", "c"])
        #expect(queue.count == 0)
        #expect(queue.popFirst(among: ["echo"]) == nil)
    }

    @Test("only tasks whose name the consumer serves are handed out; priority holds across names")
    mutating func servedNamesOnly() {
        var queue = MemoryTaskQueue()
        queue.append(task("x1", name: "resize"))
        queue.append(task("e1", name: "echo", priority: 1))
        queue.append(task("x2", name: "resize", priority: 3))
        #expect(queue.popFirst(among: ["echo"])?.id == "e1")
        #expect(queue.popFirst(among: ["echo"]) == nil)
        #expect(queue.countsByName == ["resize": 2])
        #expect(queue.popFirst(among: ["echo", "resize"])?.id == "x2")
        #expect(queue.hasWaiting(named: "resize"))
        #expect(!queue.hasWaiting(named: "echo"))
    }

    @Test("a requeued task goes to the front of its priority")
    mutating func prependGoesFirst() {
        var queue = MemoryTaskQueue()
        queue.append(task("a"))
        queue.append(task("b"))
        let requeued = task("r")
        queue.prepend(requeued)
        #expect(queue.popFirst(among: ["echo"])?.id == "r")
    }

    @Test("within a name and priority, producers take turns: a new producer's tasks are not stuck behind a backlog")
    mutating func producersTakeTurns() {
        var queue = MemoryTaskQueue()
        for n in 0..<1000 { queue.append(task("old\(n)", from: 1)) }
        for n in 0..<3 { queue.append(task("new\(n)", from: 2)) }
        queue.append(task("urgent", priority: 5, from: 1))
        let order = (0..<8).compactMap { _ in queue.popFirst(among: ["echo"])?.id }
        // Priority first; then turns, each producer first-in first-out.
        #expect(order == ["urgent", "old0", "new0", "old1", "new1", "old2", "new2", "old3"])
        #expect(queue.count == 1000 - 4)
    }

    @Test("between names of equal priority a consumer serving both gets them in turn")
    mutating func namesTakeTurns() {
        var queue = MemoryTaskQueue()
        for n in 0..<100 { queue.append(task("a\(n)", name: "a")) }
        for n in 0..<2 { queue.append(task("b\(n)", name: "b")) }
        queue.append(task("c0", name: "c", priority: -1))
        let order = (0..<6).compactMap { _ in queue.popFirst(among: ["a", "b", "c"])?.id }
        #expect(order == ["a0", "b0", "a1", "b1", "a2", "a3"])
        #expect(queue.countsByName == ["a": 96, "c": 1])
    }

    @Test("removed tasks are skipped, counted out at once, and compacted away")
    mutating func lazyRemoval() {
        var queue = MemoryTaskQueue()
        var records: [TaskRecord] = []
        for i in 0..<3000 {
            let record = task("t\(i)")
            records.append(record)
            queue.append(record)
        }
        for record in records where record.id != "t2999" {
            record.move(to: .done)
            queue.remove(record)
        }
        #expect(queue.count == 1)
        #expect(queue.countsByName == ["echo": 1])
        #expect(queue.popFirst(among: ["echo"])?.id == "t2999")
        #expect(queue.count == 0)
        #expect(queue.popFirst(among: ["echo"]) == nil)
    }

    @Test("the result store evicts the oldest past its capacity and expires by age")
    func resultStoreBounds() {
        final class Entry {
            let name: String
            init(_ name: String) { self.name = name }
        }
        var store = ResultStore<Entry>(capacity: 3, retentionNanoseconds: 1000)
        #expect(store.insert(Entry("a"), finishedAt: 10).isEmpty)
        #expect(store.insert(Entry("b"), finishedAt: 20).isEmpty)
        #expect(store.insert(Entry("c"), finishedAt: 30).isEmpty)
        #expect(store.insert(Entry("d"), finishedAt: 40).map(\.name) == ["a"])
        #expect(store.count == 3)
        #expect(store.expire(now: 1025).map(\.name) == ["b"])
        #expect(store.count == 2)
        #expect(store.expire(now: 5000).map(\.name) == ["c", "d"])
        #expect(store.count == 0)
    }

    @Test("a wall clock stepped back does not make kept results look expired")
    func resultStoreClockStepBack() {
        final class Entry {}
        var store = ResultStore<Entry>(capacity: 10, retentionNanoseconds: 1000)
        _ = store.insert(Entry(), finishedAt: 1_000_000)
        #expect(store.expire(now: 10).isEmpty, "now is before the result finished: it is not old")
        #expect(store.count == 1)
        #expect(store.expire(now: 1_002_000).count == 1)
    }
}

@Suite("The queue with many priorities")
struct ManyPrioritiesTests {
    @Test("100,000 distinct priorities: highest first, in time that does not grow with their square")
    func manyDistinctPriorities() {
        var queue = MemoryTaskQueue()
        let owner = ShareAccount(key: [1])
        let count = 100_000
        let started = ContinuousClock.now
        for n in 0..<count {
            let priority = Int32((n &* 7_919) % count)  // every priority once, in a scrambled order
            queue.append(TaskRecord(id: "t\(n)", name: "a", args: [], options: TaskOptions(priority: priority),
                                    producer: [1], owner: owner, nameShare: owner, sequence: UInt64(n), now: 0))
        }
        var last = Int32.max
        var popped = 0
        while let task = queue.popFirst(among: ["a"]) {
            #expect(task.options.priority <= last)
            last = task.options.priority
            popped += 1
        }
        #expect(popped == count)
        // Quadratic insertion took about 20 s for 280,000 priorities in a release build.
        #expect(started.duration(to: .now) < .seconds(30))
        print("100,000 distinct priorities in and out: \(started.duration(to: .now))")
    }
}
