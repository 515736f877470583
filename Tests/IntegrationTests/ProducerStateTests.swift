import ConveyorProtocol
@testable import ConveyorProducer
import Logging
import Synchronization
import Testing
import ZeroMQ

// The producer's state machines on their own: no socket, no broker, no clock (times are given).
// (They live in this target because it is the one that depends on ConveyorProducer.)

/// The logger of the producers the tests make.
let testLogger = Logger(label: "conveyor.tests")

@Suite("Producer connection state machine")
struct ConnectionStateTests {
    @Test("idle → connecting → connected: the first connection resends nothing")
    func firstConnection() throws {
        var state = ConnectionState()
        #expect(state.phase == .idle)
        #expect(try state.handle(.start) == .none)
        #expect(state.phase == .connecting)
        #expect(try state.handle(.connected) == .none)
        #expect(state.phase == .connected(number: 1))
    }

    @Test("a dropped connection and a new one: resubmit, once per new connection")
    func reconnect() throws {
        var state = ConnectionState()
        _ = try state.handle(.start)
        _ = try state.handle(.connected)
        for number in 2...4 {
            #expect(try state.handle(.disconnected) == .none)
            #expect(state.phase == .reconnecting(connections: number - 1))
            #expect(try state.handle(.connected) == .resubmitPending)
            #expect(state.phase == .connected(number: number))
        }
        #expect(state.refusedEvents == 0)
    }

    @Test("close is allowed from every phase but closed, and closed is terminal")
    func close() throws {
        let paths: [[ConnectionState.Event]] = [[], [.start], [.start, .connected], [.start, .connected, .disconnected]]
        for path in paths {
            var state = ConnectionState()
            for event in path { _ = try state.handle(event) }
            #expect(try state.handle(.close) == .none)
            #expect(state.phase == .closed)
            for event in [ConnectionState.Event.start, .connected, .disconnected, .close] {
                #expect(throws: IllegalConnectionTransition(phase: .closed, event: event)) { try state.handle(event) }
            }
            #expect(state.phase == .closed)
            #expect(state.refusedEvents == 4)
        }
    }

    @Test("an event out of order is refused, counted, and changes nothing")
    func illegalEvents() throws {
        var state = ConnectionState()
        #expect(throws: IllegalConnectionTransition(phase: .idle, event: .connected)) { try state.handle(.connected) }
        #expect(state.phase == .idle)
        _ = try state.handle(.start)
        #expect(throws: IllegalConnectionTransition.self) { try state.handle(.disconnected) }
        #expect(throws: IllegalConnectionTransition.self) { try state.handle(.start) }
        #expect(state.phase == .connecting)
        _ = try state.handle(.connected)
        // A second CONNECTED without a DISCONNECTED is not a new connection to resubmit on.
        #expect(throws: IllegalConnectionTransition.self) { try state.handle(.connected) }
        #expect(state.phase == .connected(number: 1))
        _ = try state.handle(.disconnected)
        #expect(throws: IllegalConnectionTransition.self) { try state.handle(.disconnected) }
        #expect(state.phase == .reconnecting(connections: 1))
        #expect(state.refusedEvents == 5)
    }
}

@Suite("Producer request table")
struct RequestTableTests {
    static let second: UInt64 = 1_000_000_000
    static let limits = RequestTable.Limits(window: 4, requestTimeout: .seconds(10), resultGrace: .seconds(5),
                                            broker: "tcp://broker:1")

    /// Ids `t1`, `t2`, … in call order.
    final class IDs: Sendable {
        private let next = Atomic<Int>(0)
        func make() -> String { "t\(next.add(1, ordering: .relaxed).newValue)" }
    }

    static func tasks(_ count: Int, timeoutSeconds: UInt32 = 60) -> [TaskSubmission] {
        (0..<count).map { _ in TaskSubmission("echo", json: RawJSON("[]"), options: TaskOptions(timeoutMilliseconds: timeoutSeconds * 1000)) }
    }

    /// Admits `submissions` at time `now` (taking their slots first) and returns the cells by id.
    @discardableResult
    static func admit(_ table: inout RequestTable, _ submissions: [TaskSubmission], now: UInt64 = 0,
                      group: AcceptGroup? = nil, detached: Bool = false, ids: IDs = IDs()) throws -> [(id: String, cell: TaskCell)] {
        let taken = try table.takeSlots(submissions.count)
        #expect(taken)
        var admitted: [(id: String, cell: TaskCell)] = []
        let completions = try table.admit(submissions, now: now, group: group, detached: detached, makeID: ids.make) {
            admitted.append(($0, $1))
        }
        completions.perform()
        return admitted
    }

    static func result(_ id: String, _ status: TaskStatus = .ok) -> Outcome {
        Outcome(result: TaskResult(id: id, status: status, body: RawJSON("[]"), info: nil), acceptError: nil)
    }

    @Test("admitted tasks wait in the outbox as SUBMITs, in order, and take their window slots")
    func admit() throws {
        var table = RequestTable(limits: Self.limits)
        let admitted = try Self.admit(&table, Self.tasks(3))
        #expect(admitted.map(\.id) == ["t1", "t2", "t3"])
        #expect(table.tasks.count == 3 && table.inFlight == 3)
        let sent = table.takeOutbox().compactMap { request -> String? in
            if case .submit(let id, _) = request { return id }
            return nil
        }
        #expect(sent == ["t1", "t2", "t3"])
        let second = table.takeOutbox()
        #expect(second.isEmpty)
        #expect(table.pendingSubmissions().count == 3, "every task without a result is resent on a new connection")
    }

    @Test("an id already in flight is the same task: the same cell, and its slot is given back")
    func duplicateID() throws {
        var table = RequestTable(limits: Self.limits)
        let first = try Self.admit(&table, [TaskSubmission("echo", json: RawJSON("[]"), id: "same")])
        let again = try Self.admit(&table, [TaskSubmission("echo", json: RawJSON("[]"), id: "same")])
        #expect(first[0].cell === again[0].cell)
        #expect(table.tasks.count == 1 && table.inFlight == 1)
    }

    @Test("a submit call is answered once sealed and every task accepted or refused; a result frees the slot")
    func acceptGroup() async throws {
        var table = RequestTable(limits: Self.limits)
        let group = AcceptGroup(throwsTaskErrors: true)
        try Self.admit(&table, Self.tasks(2), group: group)
        var completions = table.accepted(["t1", "t2", "t1"])
        #expect(completions.answeredGroups.isEmpty, "not sealed yet: more parts of the call may follow")
        completions = table.seal(group)
        #expect(completions.answeredGroups.count == 1)
        completions.perform()
        #expect(await group.answered.wait() == nil)

        completions = table.finish([Self.result("t1"), Self.result("t1"), Self.result("unknown")])
        #expect(completions.results.map(\.result.id) == ["t1"], "a duplicate or unknown result is ignored")
        #expect(table.inFlight == 1 && table.tasks.keys.sorted() == ["t2"])
        completions.perform()
        #expect(table.tasks["t2"] != nil)
    }

    @Test("a refused task fails a single submit with the broker's reason, but not a batch")
    func refusals() async throws {
        let refusal = ProducerError.rejected(id: "t1", reason: "queue full")
        for throwsTaskErrors in [true, false] {
            var table = RequestTable(limits: Self.limits)
            let group = AcceptGroup(throwsTaskErrors: throwsTaskErrors)
            let cells = try Self.admit(&table, Self.tasks(1), group: group)
            table.seal(group).perform()
            let refused = TaskResult(id: "t1", status: .rejected, kind: .rejected, message: "queue full")
            let completions = table.finish([Outcome(result: refused, acceptError: refusal)])
            #expect(completions.answeredGroups.count == 1)
            completions.perform()
            #expect(await group.answered.wait() == (throwsTaskErrors ? refusal : nil))
            #expect(cells[0].cell.result == refused)
        }
    }

    @Test("detached tasks free their slots and leave the table once accepted; refusals are kept for the call; shutdown ends none")
    func detachedTasks() async throws {
        var table = RequestTable(limits: Self.limits)
        let group = AcceptGroup(throwsTaskErrors: false)
        try Self.admit(&table, Self.tasks(4), group: group, detached: true)
        let full = try table.takeSlots(1)
        #expect(!full, "until the broker answers, detached tasks hold their slots")

        var completions = table.accepted(["t1", "t2"])
        #expect(table.inFlight == 2 && table.tasks.keys.sorted() == ["t3", "t4"], "accepted: gone, slots free")
        #expect(table.pendingSubmissions().count == 2, "only what is not accepted is resent on a new connection")
        let refused = TaskResult(id: "t3", status: .rejected, kind: .rejected, message: "queue full")
        completions = table.finish([Outcome(result: refused, acceptError: .rejected(id: "t3", reason: "queue full"))])
        #expect(completions.answeredGroups.isEmpty)
        _ = table.accepted(["t4"])
        completions = table.seal(group)
        #expect(completions.answeredGroups.count == 1)
        completions.perform()
        #expect(await group.answered.wait() == nil)
        #expect(group.refusals == ["t3": refused])
        #expect(table.tasks.isEmpty && table.inFlight == 0)

        // A result the broker sends later is ignored; the window is whole again.
        #expect(table.finish([Self.result("t1")]).isEmpty)
        try Self.admit(&table, Self.tasks(4), ids: IDs())
        #expect(table.inFlight == 4)
        _ = table.finish((1...4).map { Self.result("t\($0)") })

        // Someone who waits for the result of a detached task keeps it until the result.
        try Self.admit(&table, [TaskSubmission("echo", json: RawJSON("[]"), id: "same")], detached: true)
        try Self.admit(&table, [TaskSubmission("echo", json: RawJSON("[]"), id: "same")])
        _ = table.accepted(["same"])
        #expect(table.tasks["same"] != nil && table.inFlight == 1)
        _ = table.finish([Self.result("same")])

        // Shutdown finds no accepted detached task to end.
        try Self.admit(&table, [TaskSubmission("echo", json: RawJSON("[]"), id: "queued")], detached: true)
        _ = table.accepted(["queued"])
        #expect(table.close(with: .closed).results.isEmpty)
    }

    @Test("a full window queues submitters first come first served; freed slots go to them in order")
    func window() async throws {
        let table = SharedTable(Self.limits)
        _ = try table.withLock { table throws in try Self.admit(&table, Self.tasks(4)) }
        let free = try table.withLock { table throws in try table.takeSlots(1) }
        #expect(free == false)
        let granted = Locked<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (order, count) in [2, 1].enumerated() {
                group.addTask {
                    try await table.waitForSlots(count)
                    granted.withLock { $0.append(order) }
                }
                // Each waiter in line before the next one asks.
                while table.withLock({ $0.windowWaiterCount }) < order + 1 { await Task.yield() }
            }
            let jumped = try table.withLock { table throws in try table.takeSlots(1) }
            #expect(jumped == false, "no one jumps the line")
            // One slot free: not enough for the first in line (2), so no one gets any.
            var completions = table.withLock { $0.finish([Self.result("t1")]) }
            #expect(completions.grantedSlots.isEmpty)
            // A second slot: the first in line gets 2; the second waits for the third.
            completions = table.withLock { $0.finish([Self.result("t2")]) }
            #expect(completions.grantedSlots.count == 1)
            completions.perform()
            completions = table.withLock { $0.finish([Self.result("t3")]) }
            #expect(completions.grantedSlots.count == 1)
            completions.perform()
            try await group.waitForAll()
        }
        #expect(granted.withLock { $0 } == [0, 1])
        #expect(table.withLock { $0.inFlight } == 4)
    }

    @Test("replies: STATUS and CANCEL matched by id, STATS and DEAD_LETTERS first in first out; a late reply is dropped")
    func replies() throws {
        var table = RequestTable(limits: Self.limits)
        let answers = Locked<[String]>([])
        func waiter(_ name: String) -> ReplyWaiter {
            ReplyWaiter(deadline: 10 * Self.second) { result in
                let text = switch result {
                case .success(.status(let report)): "\(name): status \(report.state)"
                case .success(.cancel(let outcome)): "\(name): cancel \(outcome)"
                case .success(.statistics(let json)), .success(.deadLetters(let json)), .success(.purge(let json)), .success(.admin(let json)), .success(.tasks(let json)):
                    "\(name): \(json.text)"
                case .failure(let error): "\(name): \(error)"
                }
                answers.withLock { $0.append(text) }
            }
        }
        let registeredA = table.register(.status("a"), awaiting: .status("a"), waiter("s-a"))
        #expect(registeredA)
        let registeredB = table.register(.status("b"), awaiting: .status("b"), waiter("s-b"))
        #expect(registeredB)
        let registeredC = table.register(.cancel("a"), awaiting: .cancel("a"), waiter("c-a"))
        #expect(registeredC)
        let registeredStats1 = table.register(.stats, awaiting: .statistics, waiter("stats-1"))
        #expect(registeredStats1)
        let registeredStats2 = table.register(.stats, awaiting: .statistics, waiter("stats-2"))
        #expect(registeredStats2)
        let registeredDL = table.register(.deadLetters(.purge, id: ""), awaiting: .deadLetters, waiter("dl"))
        #expect(registeredDL)
        let sent = table.takeOutbox()
        #expect(sent.count == 6)
        #expect(table.replyWaiterCount == 6)

        table.answer(.status("b"), with: .success(.status(TaskStatusReport(id: "b", state: .running, result: nil)))).perform()
        table.answer(.cancel("a"), with: .success(.cancel(.cancelled))).perform()
        table.answer(.statistics, with: .success(.statistics(RawJSON("{1}")))).perform()
        table.answer(.statistics, with: .success(.statistics(RawJSON("{2}")))).perform()
        let late = table.answer(.statistics, with: .success(.statistics(RawJSON("{3}"))))
        #expect(late.isEmpty, "no one waits any more")
        table.answer(.deadLetters, with: .success(.deadLetters(RawJSON("{}")))).perform()
        #expect(answers.withLock { $0 } == ["s-b: status running", "c-a: cancel cancelled", "stats-1: {1}", "stats-2: {2}", "dl: {}"])
        #expect(table.replyWaiterCount == 1)
    }

    @Test("deadlines: no answer within the request timeout, no result within the task's timeout plus grace, no reply")
    func expiry() async throws {
        var table = RequestTable(limits: Self.limits)
        let group = AcceptGroup(throwsTaskErrors: true)
        try Self.admit(&table, Self.tasks(2, timeoutSeconds: 20), now: 0, group: group)
        table.seal(group).perform()
        let failed = Locked<[ProducerError]>([])
        _ = table.register(.stats, awaiting: .statistics, ReplyWaiter(deadline: 10 * Self.second) { result in
            if case .failure(let error) = result { failed.withLock { $0.append(error) } }
        })
        _ = table.accepted(["t2"])
        let early = table.expire(now: 9 * Self.second)
        #expect(early.isEmpty)

        // t1 unanswered at 11 s: its submit throws the timeout, its handle gets a timeout result.
        var completions = table.expire(now: 11 * Self.second)
        #expect(completions.results.map(\.result.id) == ["t1"])
        #expect(completions.results.first?.result.status == .timeout)
        #expect(completions.replies.count == 1)
        completions.perform()
        let timeout = ProducerError.brokerTimeout(endpoint: "tcp://broker:1", waited: .seconds(10))
        #expect(await group.answered.wait() == timeout)
        #expect(failed.withLock { $0 } == [timeout])

        // t2 accepted, no result by 20 s + 5 s of grace.
        let beforeGrace = table.expire(now: 24 * Self.second)
        #expect(beforeGrace.isEmpty)
        completions = table.expire(now: 26 * Self.second)
        #expect(completions.results.map(\.result.id) == ["t2"])
        #expect(completions.results.first?.result.errorMessage?.contains("timeout of 20.0 s plus 5.0 seconds") == true)
        #expect(table.tasks.isEmpty && table.inFlight == 0)
    }

    @Test("a busy broker (connection up) is not a lost task: the submit returns, the handle waits for the result until the task's deadline")
    func busyBrokerIsNotALostTask() async throws {
        var table = RequestTable(limits: Self.limits)
        let group = AcceptGroup(throwsTaskErrors: true)
        try Self.admit(&table, Self.tasks(1, timeoutSeconds: 60), now: 0, group: group)
        table.seal(group).perform()
        let completions = table.expire(now: 11 * Self.second, brokerAlive: true)
        #expect(completions.unconfirmed == ["t1"])
        #expect(completions.results.isEmpty, "no timeout result for a task that may still run")
        completions.perform()
        #expect(await group.answered.wait() == nil, "the submit call returns without an error")
        #expect(table.tasks["t1"] != nil && table.tasks["t1"]?.accepted == false, "still waiting; resubmitted on a reconnect")
        // Its ACCEPTED and RESULT come late: the handle gets the result.
        _ = table.accepted(["t1"])
        #expect(table.expire(now: 30 * Self.second, brokerAlive: true).isEmpty)
        // With no result by its own deadline (60 s + 5 s of grace), it times out as any task does.
        let late = table.expire(now: 66 * Self.second, brokerAlive: true)
        #expect(late.results.map(\.result.id) == ["t1"] && late.results.first?.result.status == .timeout)
    }

    @Test("a broker of another protocol: what it has not accepted fails, accepted tasks keep waiting for results")
    func failUnanswered() throws {
        var table = RequestTable(limits: Self.limits)
        try Self.admit(&table, Self.tasks(3))
        _ = table.accepted(["t2"])
        _ = table.register(.stats, awaiting: .statistics, ReplyWaiter(deadline: .max) { _ in })
        let error = ProducerError.protocolError("the broker speaks protocol CVY9")
        let completions = table.failUnanswered(with: error)
        #expect(completions.results.map(\.result.id).sorted() == ["t1", "t3"])
        #expect(completions.results.allSatisfy { $0.result.status == .error && $0.result.errorKind == .rejected })
        #expect(completions.replies.count == 1)
        #expect(table.tasks.keys.sorted() == ["t2"])
        #expect(!table.isClosed)
    }

    @Test("close ends every wait once, and refuses every later call")
    func close() async throws {
        let table = SharedTable(Self.limits)
        let group = AcceptGroup(throwsTaskErrors: false)
        let cells = try table.withLock { table throws in try Self.admit(&table, Self.tasks(4), group: group) }
        table.withLock { $0.seal(group) }.perform()
        let replies = Locked<[Result<Reply, ProducerError>]>([])
        _ = table.withLock {
            $0.register(.status("x"), awaiting: .status("x"), ReplyWaiter(deadline: .max) { r in replies.withLock { $0.append(r) } })
        }
        let waiting = Task { try await table.waitForSlots(1) }
        while table.withLock({ $0.windowWaiterCount }) == 0 { await Task.yield() }

        let completions = table.withLock { $0.close(with: .closed) }
        #expect(completions.refusedSlots.count == 1 && completions.results.count == 4 && completions.replies.count == 1)
        completions.perform()
        let again = table.withLock { $0.close(with: .closed) }
        #expect(again.isEmpty, "closing again finds nothing left")

        await #expect(throws: ProducerError.closed) { try await waiting.value }
        #expect(await group.answered.wait() == .closed, "closing fails even a batch's submit call")
        #expect(cells.allSatisfy { $0.cell.result?.errorKind == .consumerLost })
        #expect(replies.withLock { $0.count } == 1)
        try table.withLock { table throws in
            #expect(throws: ProducerError.closed) { try table.takeSlots(1) }
            #expect(throws: ProducerError.closed) { try table.admit(Self.tasks(1), now: 0, group: nil, makeID: { "late" }) { _, _ in } }
            let registered = table.register(.stats, awaiting: .statistics, ReplyWaiter(deadline: .max) { _ in })
            #expect(!registered)
            let outbox = table.takeOutbox()
            #expect(table.tasks.isEmpty && outbox.isEmpty)
        }
    }
}

/// A value behind a lock that escaping closures can capture.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}

/// A table behind a lock that tasks can share (`Mutex` cannot be captured: it is not copyable).
final class SharedTable: Sendable {
    private let table: Mutex<RequestTable>

    init(_ limits: RequestTable.Limits) { table = Mutex(RequestTable(limits: limits)) }

    func withLock<T, E: Error>(_ body: (inout RequestTable) throws(E) -> T) throws(E) -> T {
        try table.withLock { (table: inout RequestTable) throws(E) -> T in try body(&table) }
    }

    /// Waits as `Producer` does for `count` window slots.
    func waitForSlots(_ count: Int) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if let now = withLock({ $0.waitForSlots(count, continuation: continuation) }) {
                continuation.resume(with: now)
            }
        }
    }
}

@Suite("Producer result decoding")
struct ProducerResultDecodingTests {
    @Test("a result status this producer does not know becomes an error result that names it, not a silent error")
    func unknownStatus() {
        let result = Producer.result(id: "t1", status: Frame(Array("deferred".utf8)), body: Frame(Array("{}".utf8)),
                                     info: Frame([]))
        #expect(result.status == .error)
        #expect(result.errorMessage?.contains("'deferred'") == true, "\(result.body.text)")
        #expect(result.errorKind == nil)
    }

    @Test("every known status maps to itself, the body untouched")
    func knownStatuses() {
        for status in TaskStatus.allCases where status != .unrecognized {
            let result = Producer.result(id: "t1", status: Frame(Array(status.rawValue.utf8)), body: Frame(Array("[7]".utf8)),
                                         info: Frame(Array(#"{"pid":12,"attempts":2}"#.utf8)))
            #expect(result.status == status && result.body.text == "[7]")
            #expect(result.info?.pid == 12 && result.info?.attempts == 2)
        }
    }

    static func statusReply(_ fields: [String]) throws -> Envelope {
        try Envelope(frames: [Array("CVY2".utf8), [0x15]] + fields.map { Array($0.utf8) }, fromRouter: false)
    }

    @Test("a STATUS_REPLY with a state this producer does not know is an error naming it, not 'unknown'")
    func unknownState() throws {
        let reply = Producer.statusReport(try Self.statusReply(["t1", "waiting_for_group", "", "", ""]))
        guard case .failure(.unexpectedReply(let text)) = reply else {
            Issue.record("\(reply)")
            return
        }
        #expect(text.contains("'waiting_for_group'"))
    }

    @Test("a STATUS_REPLY of a scheduled task carries its due time from the info frame")
    func scheduledStatus() throws {
        let reply = Producer.statusReport(try Self.statusReply(["t1", "scheduled", "", "", #"{"due_at":1800000000000}"#]))
        guard case .success(.status(let report)) = reply else {
            Issue.record("\(reply)")
            return
        }
        #expect(report.state == .scheduled && report.dueAt == 1_800_000_000_000 && report.result == nil)
    }

    @Test("a STATUS_REPLY of a finished task carries its result; of a queued one, none")
    func statusReplies() throws {
        let done = Producer.statusReport(try Self.statusReply(["t1", "done", "ok", "[1]", ""]))
        guard case .success(.status(let report)) = done else {
            Issue.record("\(done)")
            return
        }
        #expect(report.state == .done && report.result?.status == .ok && report.result?.body.text == "[1]")
        let queued = Producer.statusReport(try Self.statusReply(["t2", "queued", "", "", ""]))
        guard case .success(.status(let waiting)) = queued else {
            Issue.record("\(queued)")
            return
        }
        #expect(waiting == TaskStatusReport(id: "t2", state: .queued, result: nil))
    }
}
