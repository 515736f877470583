@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Testing

/// The journal is complete: after every step of the model test's random sequences, replaying the
/// records the table wrote gives exactly the table's state (every task's state, attempts, backoff,
/// producer and result; the dead letters; the paused names), and a table restored from that replay holds the same
/// tasks. A transition that forgot its record, or wrote a wrong one, fails here.
extension ModelRun {
    mutating func startJournal() {
        engine.table.journaling = true
        journalReplay = RecoveredState(deadLetterCapacity: engine.config.deadLetterCapacity)
    }

    /// Applies the records written since the last step and compares; `nil` when they agree.
    mutating func checkJournal() -> String? {
        guard var replay = journalReplay else { return nil }
        var chunk: [UInt8] = []
        _ = engine.table.journal.take(into: &chunk)
        JournalEncoder.sealChecksums(&chunk)
        do {
            for record in try JournalRecord.decodeAll(chunk) { replay.apply(record) }
        } catch {
            return "journal records unreadable: \(error)"
        }
        journalReplay = replay
        return Self.compare(table: engine.table, replay: replay)
    }

    static func compare(table: TaskTable<RecordingOutbox>, replay: RecoveredState) -> String? {
        let live = table.records.filter { !$0.value.isDone || $0.value.result != nil }
        if live.count != replay.tasks.count {
            let missing = Set(live.keys).symmetricDifference(replay.tasks.keys).sorted().prefix(5)
            return "journal holds \(replay.tasks.count) tasks, the table \(live.count) (differing: \(missing))"
        }
        for (id, task) in live {
            guard let entry = replay.tasks[id] else { return "task \(id) is missing from the journal" }
            let state: TaskEntryState
            switch task.state {
            case .queued: state = .queued
            case .delayed: state = .delayed
            case .running: state = .running
            case .done: state = .done
            }
            if entry.state != state { return "task \(id): journal says \(entry.state), table \(task.state)" }
            if entry.attempts != task.attempts { return "task \(id): journal says \(entry.attempts) attempts, table \(task.attempts)" }
            if entry.producer != task.producer { return "task \(id): journal has another producer" }
            if entry.sequence != task.sequence || entry.deadline != task.deadline { return "task \(id): sequence or deadline differ" }
            if state == .delayed, entry.notBefore != task.notBefore { return "task \(id): backoff ends differ" }
            if state != .done, entry.args != task.args { return "task \(id): args differ" }
            if let result = task.result {
                guard let kept = entry.result, kept.status == result.status, kept.body == result.body, kept.info == result.info else {
                    return "task \(id): journal has another result"
                }
            }
        }
        let letters = table.deadLetters.letters.map { "\($0.id):\($0.reason)" }
        let replayed = replay.deadLetters.map { "\($0.id):\($0.reason)" }
        if letters != Array(replayed) { return "dead letters differ: table \(letters), journal \(Array(replayed))" }
        if table.paused != replay.paused { return "paused names differ: table \(table.paused.sorted()), journal \(replay.paused.sorted())" }
        return nil
    }
}

@Suite("Journal replay against the task state machine")
struct JournalReplayTests {
    @Test("2,000 random sequences: replaying the journal after every step gives the table's state")
    func replayMatchesTable() {
        let (failure, _) = TaskTableModelTests.explore(count: 2_000, steps: 8...48, journal: true)
        #expect(failure == nil, "\(failure ?? "")")
    }

    @Test("a table restored from the journal holds the same tasks, queued in order, with running ones first")
    func restoreRebuildsTheTable() {
        for seed in UInt64(1)...300 {
            var run = ModelRun(seed: seed, faults: [])
            run.startJournal()
            _ = run.run(steps: 30)
            guard let replay = run.journalReplay else { continue }
            let restored = BrokerEngine<RecordingOutbox>.recording()
            restored.table.restore(replay)
            let original = run.engine.table
            for (id, entry) in replay.tasks {
                guard let task = restored.table[id] else {
                    Issue.record("seed \(seed): \(id) not restored")
                    return
                }
                switch entry.state {
                case .queued, .running: #expect(task.isQueued, "seed \(seed): \(id) should be queued after a restart")
                case .delayed: #expect(task.state == .delayed)
                case .done: #expect(task.isDone && task.result?.body == original[id]?.result?.body)
                }
                #expect(task.attempts == entry.attempts)
            }
            let expectedQueued = replay.tasks.values.filter { $0.state == .queued || $0.state == .running }.count
            #expect(restored.table.queue.count == expectedQueued, "seed \(seed)")
            #expect(restored.table.deadLetters.count == replay.deadLetters.count)
            #expect(restored.table.paused == replay.paused, "seed \(seed)")
        }
    }

    @Test("after a restore, new tasks come after every restored one")
    func sequenceContinues() {
        var state = RecoveredState()
        state.apply(.accepted(TaskEntry(id: "old", name: "a", args: Array("{}".utf8), options: .default,
                                        producer: [1], sequence: 41, deadline: .max)))
        let engine = BrokerEngine<RecordingOutbox>.recording()
        engine.table.restore(state)
        let task = engine.table.accept(id: "new", name: "a", args: Array("{}".utf8), options: .default, producer: [1], now: 0)
        #expect(task.sequence == 42)
    }
}
