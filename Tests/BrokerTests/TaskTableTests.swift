@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// One test per transition of the task state machine, driven as the socket loop drives it
/// (decoded messages into ``BrokerEngine``), with the outbox recorded.
@Suite("Task state machine, transition by transition")
struct TaskTableTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]

    func consumer(_ n: UInt8, capacity: Int = 1, names: [String] = ["echo"], update: Bool? = nil) {
        let info = ReadyInfo(capacity: capacity, tasks: names, host: "h", pid: Int(n), threads: max(1, capacity),
                             heartbeatMilliseconds: 1000, update: update)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, name: String = "echo", _ options: TaskOptions = TaskOptions()) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), options.encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func done(_ id: String, _ status: String, from n: UInt8) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done,
                                           [Wire.bytes(id), Wire.bytes(status), Wire.bytes(#"{"error":"boom"}"#), Wire.bytes("{}")]),
                             now: now)
    }

    func state(_ id: String) -> TaskRecord.State? { engine.table[id]?.state }
    func count(_ transition: TaskTransition) -> Int { engine.table.count(of: transition) }

    @Test("accept queues a task no consumer serves; dispatch sends it once one with credit comes")
    func acceptThenDispatch() {
        submit("t1")
        #expect(state("t1") == .queued)
        #expect(outbox.accepted == ["t1"] && outbox.dispatches.isEmpty)
        consumer(1)
        #expect(state("t1") == .running(consumer: [0x43, 1]))
        #expect(outbox.dispatches == [.init(id: "t1", consumer: [0x43, 1], attempt: 1)])
        #expect(count(.accept) == 1 && count(.dispatch) == 1)
        #expect(engine.table.consumers[[0x43, 1]]!.credit == 0)
    }

    @Test("finish and fail end a running task with the consumer's result and give its credit back")
    func finishAndFail() {
        consumer(1, capacity: 2)
        submit("ok1")
        submit("bad1")
        done("ok1", "ok", from: 1)
        done("bad1", "error", from: 1)
        #expect(state("ok1") == .done && state("bad1") == .done)
        #expect(outbox.results.map(\.status) == [.ok, .error])
        #expect(count(.finish) == 1 && count(.fail) == 1)
        #expect(engine.table.consumers[[0x43, 1]]!.credit == 2)
        done("ok1", "ok", from: 1)
        #expect(outbox.results.count == 2, "a duplicate result is dropped")
        #expect(engine.table.totals.duplicatesDropped == 1)
    }

    @Test("retry delays a failed task by its backoff; promote queues it when the backoff is over")
    mutating func retryThenPromote() {
        consumer(1)
        submit("t1", TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 100))
        done("t1", "retry", from: 1)
        #expect(state("t1") == .delayed)
        wall += 50_000_000
        engine.tick(now: now)
        #expect(state("t1") == .delayed)
        wall += 60_000_000
        engine.tick(now: now)
        #expect(state("t1") == .running(consumer: [0x43, 1]))
        #expect(outbox.dispatches.last == .init(id: "t1", consumer: [0x43, 1], attempt: 2))
        done("t1", "retry", from: 1)
        #expect(state("t1") == .done, "no attempts left: the retry ends it as an error")
        #expect(outbox.results.last?.status == .error)
        #expect(engine.table.deadLetters.count == 1)
        #expect(count(.retry) == 1 && count(.promote) == 1 && count(.fail) == 1)
    }

    @Test("requeue hands a task back unstarted: the attempt does not count and it goes to another consumer")
    func requeue() {
        consumer(1)
        submit("t1")
        consumer(2)
        consumer(1, capacity: 0, update: true)  // draining, as a consumer does before it hands back
        done("t1", "requeue", from: 1)
        #expect(state("t1") == .running(consumer: [0x43, 2]))
        #expect(outbox.dispatches.last == .init(id: "t1", consumer: [0x43, 2], attempt: 1))
        #expect(count(.requeue) == 1)
    }

    @Test("release puts a lost consumer's task back with its attempt counted; exhaust ends it after three losses")
    func releaseThenExhaust() {
        submit("t1")
        for n: UInt8 in 1...3 {
            consumer(n)
            #expect(state("t1") == .running(consumer: [0x43, n]))
            engine.handleBackend(Wire.envelope(from: [0x43, n], .disconnect, []), now: now)
        }
        #expect(count(.release) == 2 && count(.exhaust) == 1)
        #expect(state("t1") == .done)
        #expect(outbox.results.last?.status == .error)
        #expect(engine.table.deadLetters.count == 1)
        #expect(engine.table.consumers.consumers.isEmpty)
    }

    @Test("cancel ends a queued task; a running one is not cancelled")
    func cancel() {
        submit("queued")
        consumer(1)  // takes "queued"
        submit("waiting")
        #expect(engine.table.cancel("waiting", now: wall) == .cancelled)
        #expect(engine.table.cancel("queued", now: wall) == .running)
        #expect(engine.table.cancel("waiting", now: wall) == .done)
        #expect(engine.table.cancel("nope", now: wall) == .unknown)
        #expect(outbox.results.map(\.status) == [.cancelled])
        #expect(count(.cancel) == 1)
    }

    @Test("expire times out a queued and a running task at their wall-clock deadlines; the running one keeps its credit")
    mutating func expire() {
        consumer(1)
        submit("running", TaskOptions(timeoutMilliseconds: 1000))
        submit("queued", TaskOptions(timeoutMilliseconds: 2000))
        wall += 1_000_000_000
        engine.tick(now: now)
        #expect(state("running") == .done && state("queued") == .queued)
        wall += 1_000_000_000
        engine.tick(now: now)
        #expect(state("queued") == .done)
        #expect(outbox.results.map(\.status) == [.timeout, .timeout])
        #expect(engine.table.consumers[[0x43, 1]]!.credit == 0, "its thread is still busy until it answers")
        done("running", "ok", from: 1)
        #expect(engine.table.consumers[[0x43, 1]]!.credit == 1)
        #expect(count(.expire) == 2)
    }

    @Test("evict lets the oldest result go past the retention; a resubmission then runs anew")
    func evict() {
        let engine = BrokerEngine<RecordingOutbox>.recording { $0.resultRetentionCount = 1 }
        let now = self.now
        for id in ["a", "b"] {
            engine.handleFrontend(Wire.envelope(from: producer, .submit, [Wire.bytes(id), Wire.bytes("echo"), [], Wire.bytes("{}")]), now: now)
            #expect(engine.table.cancel(id, now: now.wall) == .cancelled)
        }
        #expect(engine.table["a"] == nil && engine.table["b"]?.isDone == true)
        #expect(engine.table.count(of: .evict) == 1)
    }

    @Test("revive submits a dead letter again as a new task")
    func revive() {
        submit("t1")
        for n: UInt8 in 1...3 {
            consumer(n)
            engine.handleBackend(Wire.envelope(from: [0x43, n], .disconnect, []), now: now)
        }
        engine.handleFrontend(Wire.envelope(from: producer, .deadLetters, [Wire.bytes("requeue"), []]), now: now)
        #expect(state("t1") == .queued)
        #expect(engine.table["t1"]?.attempts == 0)
        #expect(count(.revive) == 1)
        #expect(engine.table.deadLetters.count == 0)
    }

    @Test("transitions the state does not allow are refused and counted, never applied")
    func illegalTransitionsAreRefused() {
        consumer(1)
        submit("t1")
        let task = engine.table["t1"]!
        engine.table.evict(task)  // a running task has no result to let go
        #expect(engine.table["t1"] === task)
        #expect(task.state == .running(consumer: [0x43, 1]))
        #expect(engine.table.illegalTransitions == 1)
        #expect(engine.statistics().totals.illegalTransitions == 1)
    }

    @Test("a task's timeout is a wall-clock deadline counted from its acceptance")
    func deadlineIsWallClock() {
        submit("t1", TaskOptions(timeoutMilliseconds: 1500))
        #expect(engine.table["t1"]!.deadline == wall + 1_500_000_000)
    }

    @Test("once the broker stops dispatching, ready tasks queue instead of going to consumers")
    func noDispatchWhileStopping() {
        consumer(1, capacity: 2)
        engine.beginDrain(timeout: .seconds(30))
        submit("t1")
        #expect(outbox.dispatches.isEmpty)
        consumer(1, capacity: 3, update: true)
        #expect(outbox.dispatches.isEmpty)
    }

    @Test("a consumer whose DISPATCH could not be sent gets no more tasks")
    func unreachableConsumerGetsNoMore() {
        consumer(1, capacity: 5)
        engine.table.consumers[[0x43, 1]]!.unreachable = true
        consumer(2, capacity: 5)
        submit("t1")
        submit("t2")
        #expect(outbox.dispatches.map(\.consumer) == [[0x43, 2], [0x43, 2]])
    }

    @Test("a resubmission follows the producer's new route without a state change")
    func resubmissionReroutes() {
        submit("t1")
        engine.handleFrontend(Wire.envelope(from: [0x50, 9], .submit, [Wire.bytes("t1"), Wire.bytes("echo"), [], Wire.bytes("{}")]), now: now)
        #expect(engine.table["t1"]?.producer == [0x50, 9])
        #expect(state("t1") == .queued)
        #expect(count(.reroute) == 1 && count(.accept) == 1)
    }
}
