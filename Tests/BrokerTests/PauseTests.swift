@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Pausing and resuming a task name (`PAUSE`, State/TaskTable+Pause.swift), driven through the
/// engine as the socket loop drives it.
@Suite("Pausing and resuming a task name")
struct PauseTests {
    let engine: BrokerEngine<RecordingOutbox>
    let now = BrokerInstant(wall: 1_800_000_000_000_000_000, monotonic: 5_000_000_000)
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]
    let operatorKey: [UInt8] = [0x50, 9]

    init() {
        engine = .recording()
    }

    /// A consumer of `tasks` with `threads` threads and room for `capacity` tasks.
    func consumer(_ n: UInt8, tasks: [String], capacity: Int = 4, threads: Int = 4) {
        let info = ReadyInfo(capacity: capacity, tasks: tasks, host: "h", pid: Int(n), threads: threads, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, _ name: String) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), TaskOptions().encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func done(_ id: String, by n: UInt8, _ status: String = "ok") {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done,
                                           [Wire.bytes(id), Wire.bytes(status), Wire.bytes("{}"), Wire.bytes("{}")]), now: now)
    }

    /// Sends `PAUSE action name`; returns the reply's JSON.
    @discardableResult
    func pause(_ action: String, _ name: String) -> [String: Any] {
        outbox.messages.removeAll()
        engine.handleFrontend(Wire.envelope(from: operatorKey, .pause, [Wire.bytes(action), Wire.bytes(name)]), now: now)
        let replies = outbox.messages.filter { $0.command == .pauseReply }
        #expect(replies.count == 1, "one PAUSE_REPLY")
        guard let body = replies.first?.body.first else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    var dispatched: [String] { outbox.dispatches.map(\.id) }

    @Test("a paused name's tasks are accepted and stay queued; other names dispatch as before; stats list the paused names")
    func pausedNameIsNotDispatched() {
        consumer(1, tasks: ["echo", "sha256"])
        let reply = pause("pause", "echo")
        #expect(reply["paused"] as? Bool == true && reply["changed"] as? Bool == true)
        #expect(reply["queued"] as? Int == 0 && reply["served"] as? Bool == true)
        for id in ["e1", "e2", "e3"] { submit(id, "echo") }
        submit("s1", "sha256")
        #expect(outbox.accepted == ["e1", "e2", "e3", "s1"], "submits of a paused name are accepted")
        #expect(dispatched == ["s1"])
        #expect(["e1", "e2", "e3"].allSatisfy { engine.table[$0]?.isQueued == true })
        let stats = engine.statistics()
        #expect(stats.paused == ["echo"])
        #expect(stats.queued == ["echo": 3])
        // The consumer asks for more work: still nothing of the paused name.
        done("s1", by: 1)
        #expect(dispatched == ["s1"])
        // Pausing again changes nothing, and says how many wait.
        let again = pause("pause", "echo")
        #expect(again["changed"] as? Bool == false && again["paused"] as? Bool == true && again["queued"] as? Int == 3)
    }

    @Test("resume dispatches the queued tasks at once, up to the consumers' credit; the rest wait as usual")
    func resumeDispatches() {
        consumer(1, tasks: ["echo"], capacity: 2, threads: 2)
        consumer(2, tasks: ["echo"], capacity: 1, threads: 1)
        pause("pause", "echo")
        for n in 1...5 { submit("e\(n)", "echo") }
        #expect(dispatched.isEmpty)
        outbox.dispatches.removeAll()
        let reply = pause("resume", "echo")
        #expect(reply["paused"] as? Bool == false && reply["changed"] as? Bool == true)
        #expect(dispatched == ["e1", "e2", "e3"], "oldest first, as many as the consumers take")
        #expect(reply["queued"] as? Int == 2 && reply["running"] as? Int == 3)
        #expect(engine.statistics().paused == [])
        done("e1", by: 1)
        #expect(dispatched.contains("e4"), "after the resume, dispatch goes on as before")
        // Resuming a name that is not paused changes nothing.
        #expect(pause("resume", "echo")["changed"] as? Bool == false)
    }

    @Test("tasks already dispatched finish: the running one and those reserved in the prefetch buffer")
    func dispatchedTasksFinish() {
        consumer(1, tasks: ["echo"], capacity: 3, threads: 1)
        for id in ["a", "b", "c"] { submit(id, "echo") }
        #expect(dispatched == ["a", "b", "c"])
        #expect(engine.table.isReserved(engine.table["b"]!) && engine.table.isReserved(engine.table["c"]!))
        let reply = pause("pause", "echo")
        #expect(reply["running"] as? Int == 3, "the running task and the two reserved ones")
        submit("d", "echo")
        for id in ["a", "b", "c"] { done(id, by: 1) }
        #expect(["a", "b", "c"].allSatisfy { engine.table[$0]?.result?.status == .ok }, "reserved tasks were left alone")
        #expect(dispatched == ["a", "b", "c"], "the consumer has room, but d is of a paused name")
        #expect(engine.table["d"]?.isQueued == true)
        pause("resume", "echo")
        #expect(dispatched == ["a", "b", "c", "d"])
    }

    @Test("a paused name's tasks taken back from a lost consumer queue again; a new consumer gets none of them")
    func requeuedTasksWait() {
        consumer(1, tasks: ["echo"], capacity: 2, threads: 2)
        submit("a", "echo")
        pause("pause", "echo")
        engine.handleBackend(Wire.envelope(from: [0x43, 1], .disconnect, []), now: now)
        #expect(engine.table["a"]?.isQueued == true)
        outbox.dispatches.removeAll()
        consumer(2, tasks: ["echo"])
        #expect(dispatched.isEmpty)
        pause("resume", "echo")
        #expect(outbox.dispatches.map(\.consumer) == [[0x43, 2]])
    }

    @Test("a name nobody has submitted may be paused; the reply says no task or consumer has it")
    func unknownName() {
        let reply = pause("pause", "later")
        #expect(reply["paused"] as? Bool == true && reply["changed"] as? Bool == true)
        #expect(reply["queued"] as? Int == 0 && reply["running"] as? Int == 0 && reply["served"] as? Bool == false)
        consumer(1, tasks: ["later"])
        submit("l1", "later")
        #expect(dispatched.isEmpty)
    }

    @Test("a bad action or name is answered with an error and changes nothing")
    func badRequests() {
        #expect((pause("stop", "echo")["error"] as? String)?.contains("unknown pause action 'stop'") == true)
        #expect((pause("pause", "bad name")["error"] as? String)?.contains("visible ASCII") == true)
        #expect(engine.table.paused.isEmpty)
    }

    @Test("the queue bounds count a paused name's tasks as waiting, and a refusal says the name is paused")
    func boundsSayPaused() {
        let bounded = BrokerEngine<RecordingOutbox>.recording { $0.maxQueued = 4 }
        let info = ReadyInfo(capacity: 8, tasks: ["echo"], host: "h", pid: 1, threads: 8, heartbeatMilliseconds: 1000)
        bounded.handleBackend(Wire.envelope(from: [0x43, 1], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
        bounded.handleFrontend(Wire.envelope(from: operatorKey, .pause, [Wire.bytes("pause"), Wire.bytes("echo")]), now: now)
        for n in 1...3 {
            bounded.handleFrontend(Wire.envelope(from: [0x50, UInt8(n)], .submit,
                                                 [Wire.bytes("e\(n)"), Wire.bytes("echo"), [], Wire.bytes("{}")]), now: now)
        }
        #expect(bounded.outbox.accepted == ["e1", "e2"])
        #expect(bounded.outbox.rejected.first?.reason.contains("'echo' is paused") == true, "\(bounded.outbox.rejected)")
    }

    @Test("pause and resume are journaled; replay, a snapshot and a restore keep the paused names")
    func durable() throws {
        engine.table.journaling = true
        submit("e1", "echo")
        pause("pause", "echo")
        pause("pause", "sha256")
        pause("pause", "echo")
        pause("resume", "sha256")
        var bytes: [UInt8] = []
        _ = engine.table.journal.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        let records = try JournalRecord.decodeAll(bytes)
        #expect(records.filter { $0.kind == .paused || $0.kind == .resumed }
                    == [.paused(name: "echo"), .paused(name: "sha256"), .resumed(name: "sha256")],
                "one record per change, none for a pause that changed nothing")
        #expect(JournalRecord.Kind.paused.rawValue & JournalRecord.Kind.skippableBit != 0, "an older broker may skip it")
        #expect(JournalRecord.Kind.resumed.rawValue & JournalRecord.Kind.skippableBit != 0)
        var replay = RecoveredState()
        for record in records { replay.apply(record) }
        #expect(replay.paused == ["echo"])

        // A snapshot (what compaction writes) holds the paused names.
        var encoder = JournalEncoder()
        try replay.snapshotRecords(into: &encoder) { _ throws(JournalError) in }
        var snapshot: [UInt8] = []
        _ = encoder.take(into: &snapshot)
        JournalEncoder.sealChecksums(&snapshot)
        var fromSnapshot = RecoveredState()
        for record in try JournalRecord.decodeAll(snapshot) { fromSnapshot.apply(record) }
        #expect(fromSnapshot.paused == ["echo"])
        #expect(fromSnapshot.tasks["e1"]?.state == .queued)

        // A broker restored from it keeps the name paused: a consumer gets nothing until a resume.
        let restarted = BrokerEngine<RecordingOutbox>.recording()
        restarted.table.restore(fromSnapshot)
        #expect(restarted.statistics().paused == ["echo"])
        let info = ReadyInfo(capacity: 4, tasks: ["echo"], host: "h", pid: 1, threads: 4, heartbeatMilliseconds: 1000)
        restarted.handleBackend(Wire.envelope(from: [0x43, 1], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
        #expect(restarted.outbox.dispatches.isEmpty)
        restarted.handleFrontend(Wire.envelope(from: operatorKey, .pause, [Wire.bytes("resume"), Wire.bytes("echo")]), now: now)
        #expect(restarted.outbox.dispatches.map(\.id) == ["e1"])
    }
}
