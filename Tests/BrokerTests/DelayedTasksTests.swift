@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Delayed tasks (`not_before`) and unique tasks (`unique_key`), driven through the engine with a
/// recording outbox: scheduled, never dispatched early, promoted once due with their deadline
/// counted from then, cancelled, restored from the journal; one task per name and key, answered
/// with the holder's id and result.
@Suite("Delayed and unique tasks")
struct DelayedTasksTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]
    let other: [UInt8] = [0x50, 2]
    let consumerKey: [UInt8] = [0x43, 1]
    /// The test's clock in ms since the epoch.
    var clockMilliseconds: UInt64 { wall / 1_000_000 }

    func consumer(capacity: Int = 8) {
        let info = ReadyInfo(capacity: capacity, tasks: ["echo"], host: "h", pid: 1, threads: capacity, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: consumerKey, .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, _ options: TaskOptions, from key: [UInt8]? = nil, args: String = "{}") {
        engine.handleFrontend(Wire.envelope(from: key ?? producer, .submit,
                                            [Wire.bytes(id), Wire.bytes("echo"), options.encoded(for: .current), Wire.bytes(args)]), now: now)
    }

    func done(_ id: String) {
        engine.handleBackend(Wire.envelope(from: consumerKey, .done,
                                           [Wire.bytes(id), Wire.bytes("ok"), Wire.bytes(#"{"id":"\#(id)"}"#), Wire.bytes("{}")]), now: now)
    }

    /// STATUS: the state word and the info frame.
    func status(_ id: String) -> (state: String, info: String) {
        outbox.messages.removeAll()
        engine.handleFrontend(Wire.envelope(from: producer, .status, [Wire.bytes(id)]), now: now)
        guard let reply = outbox.messages.first(where: { $0.command == .statusReply }) else { return ("none", "") }
        return (String(decoding: reply.body[1], as: UTF8.self), String(decoding: reply.body[4], as: UTF8.self))
    }

    /// Wall-clock time passes (the monotonic clock stays: the consumer is not silent).
    mutating func advance(milliseconds: UInt64) {
        wall += milliseconds * 1_000_000
        engine.tick(now: now)
    }

    @Test("a task with not_before ahead is scheduled, not dispatched to a free consumer; it goes once due, with its deadline counted from then")
    mutating func scheduledThenDispatched() {
        consumer()
        submit("later", TaskOptions(timeoutMilliseconds: 1_000, notBefore: clockMilliseconds + 5_000))
        #expect(outbox.accepted == ["later"])
        #expect(outbox.dispatches.isEmpty, "not before its time, though a consumer is free")
        #expect(status("later") == ("scheduled", #"{"due_at":\#(clockMilliseconds + 5_000)}"#))
        #expect(engine.statistics().scheduled == 1 && engine.statistics().delayed == 0)
        #expect(engine.table.count(of: .schedule) == 1)
        advance(milliseconds: 4_999)
        #expect(outbox.dispatches.isEmpty, "1 ms early is early")
        advance(milliseconds: 1)
        #expect(outbox.dispatches.map(\.id) == ["later"])
        #expect(status("later").state == "running")
        #expect(engine.statistics().scheduled == 0)
        // The timeout (1 s) counts from the due time, not from the acceptance 5 s before.
        #expect(engine.table["later"]?.deadline == wall + 1_000_000_000)
        done("later")
        #expect(outbox.results.map(\.id) == ["later"])
    }

    @Test("a not_before in the past is ready at once, one of this very ms at the next tick; one more than 366 days ahead is rejected saying so")
    func pastAndTooFar() {
        consumer()
        submit("past", TaskOptions(notBefore: clockMilliseconds - 60_000))
        submit("zero", TaskOptions(notBefore: 0))
        submit("now", TaskOptions(notBefore: clockMilliseconds))
        #expect(outbox.dispatches.map(\.id) == ["past", "zero"])
        engine.tick(now: now)
        #expect(outbox.dispatches.map(\.id) == ["past", "zero", "now"])
        submit("far", TaskOptions(notBefore: clockMilliseconds + TaskOptions.maxDelayMilliseconds + 1))
        #expect(outbox.rejected.map(\.id) == ["far"])
        #expect(outbox.rejected.first?.reason.contains("at most 366 days ahead") == true)
        submit("year", TaskOptions(notBefore: clockMilliseconds + TaskOptions.maxDelayMilliseconds))
        #expect(outbox.accepted.last == "year")
    }

    @Test("cancel of a scheduled task ends it cancelled at once; it never runs")
    mutating func cancelScheduled() {
        consumer()
        submit("later", TaskOptions(notBefore: clockMilliseconds + 5_000))
        engine.handleFrontend(Wire.envelope(from: producer, .cancel, [Wire.bytes("later")]), now: now)
        #expect(outbox.messages.contains { $0.command == .cancelReply && String(decoding: $0.body[1], as: UTF8.self) == "cancelled" })
        #expect(outbox.results.map(\.status) == [.cancelled])
        advance(milliseconds: 10_000)
        #expect(outbox.dispatches.isEmpty)
        #expect(engine.statistics().scheduled == 0)
    }

    @Test("scheduled tasks go to the back of the queue when due, and count against --max-queued")
    mutating func countedAndQueuedAtTheBack() {
        let engine = BrokerEngine<RecordingOutbox>.recording { $0.maxQueued = 3; $0.queueShare = 100 }
        func submit(_ id: String, _ options: TaskOptions = .default) {
            engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                                [Wire.bytes(id), Wire.bytes("echo"), options.encoded(for: .current), Wire.bytes("{}")]), now: now)
        }
        submit("s1", TaskOptions(notBefore: clockMilliseconds + 1_000))
        submit("q1")
        submit("q2")
        submit("s2", TaskOptions(notBefore: clockMilliseconds + 1_000))
        #expect(engine.outbox.rejected.map(\.id) == ["s2"])
        #expect(engine.outbox.rejected.first?.reason.contains("1 scheduled") == true)
        wall += 2_000_000_000
        engine.tick(now: now)
        #expect(engine.table.queue.count == 3)
        let info = ReadyInfo(capacity: 1, tasks: ["echo"], host: "h", pid: 1, threads: 1, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: consumerKey, .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
        #expect(engine.outbox.dispatches.map(\.id) == ["q1"], "the task that became due waits behind those queued before")
    }

    @Test("scheduled tasks are journaled and come back scheduled from a replay; one whose time passed meanwhile runs at once")
    mutating func restoredFromTheJournal() throws {
        engine.table.journaling = true
        submit("soon", TaskOptions(notBefore: clockMilliseconds + 2_000))
        submit("late", TaskOptions(notBefore: clockMilliseconds + 60_000))
        var bytes: [UInt8] = []
        _ = engine.table.journal.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        var replay = RecoveredState()
        for record in try JournalRecord.decodeAll(bytes) { replay.apply(record) }
        #expect(replay.counts.delayed == 2)
        // A restart 10 s later: "soon" is due, "late" is not.
        wall += 10_000_000_000
        let restarted = BrokerEngine<RecordingOutbox>.recording()
        restarted.table.restore(replay)
        #expect(restarted.table.scheduledCount == 2)
        let info = ReadyInfo(capacity: 4, tasks: ["echo"], host: "h", pid: 1, threads: 4, heartbeatMilliseconds: 1000)
        restarted.handleBackend(Wire.envelope(from: consumerKey, .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
        restarted.tick(now: now)
        #expect(restarted.outbox.dispatches.map(\.id) == ["soon"])
        #expect(restarted.table["late"]?.isScheduled == true)
        // Its accepted record alone (its delayed record lost with a torn tail) keeps it scheduled too.
        var alone = RecoveredState()
        for record in try JournalRecord.decodeAll(bytes) where record.kind == .accepted { alone.apply(record) }
        #expect(alone.counts.delayed == 2)
        let again = BrokerEngine<RecordingOutbox>.recording()
        again.table.restore(alone)
        #expect(again.table["late"]?.isScheduled == true && again.table["soon"]?.isScheduled == true)
    }

    @Test("a unique key: a second submit of the same name and key makes no task and is answered with the holder's id, then its result")
    mutating func uniqueKeyHeld() {
        consumer()
        submit("first", TaskOptions(uniqueKey: "daily", uniqueTTLMilliseconds: 10_000))
        submit("second", TaskOptions(uniqueKey: "daily", uniqueTTLMilliseconds: 10_000), from: other, args: #"{"other":1}"#)
        #expect(outbox.accepted == ["first", "second first"])
        #expect(engine.table["second"] == nil, "no second task")
        #expect(outbox.dispatches.map(\.id) == ["first"])
        #expect(engine.statistics().uniqueKeys == 1)
        done("first")
        #expect(outbox.results.map(\.id).sorted() == ["first", "second first"])
        #expect(outbox.results.first { $0.id == "second first" }?.producer == other)
        // Within the TTL after its end: answered with the kept result at once.
        advance(milliseconds: 9_000)
        submit("third", TaskOptions(uniqueKey: "daily", uniqueTTLMilliseconds: 10_000))
        #expect(outbox.accepted.last == "third first")
        #expect(outbox.results.last == RecordingOutbox.Delivery(id: "third first", status: .ok, producer: producer, redelivery: true))
        // Past the TTL: a new task.
        advance(milliseconds: 1_001)
        #expect(engine.statistics().uniqueKeys == 0)
        submit("fourth", TaskOptions(uniqueKey: "daily", uniqueTTLMilliseconds: 10_000))
        #expect(outbox.accepted.last == "fourth")
        #expect(outbox.dispatches.map(\.id) == ["first", "fourth"])
    }

    @Test("keys are per task name; without a TTL a key goes when its task ends; a delayed task holds its key while scheduled")
    mutating func uniqueScopes() {
        consumer()
        submit("a", TaskOptions(notBefore: clockMilliseconds + 1_000, uniqueKey: "k"))
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes("b"), Wire.bytes("other-name"), TaskOptions(uniqueKey: "k").encoded(for: .current), Wire.bytes("{}")]), now: now)
        submit("c", TaskOptions(uniqueKey: "k"))
        #expect(outbox.accepted == ["a", "b", "c a"])
        advance(milliseconds: 1_000)
        done("a")
        submit("d", TaskOptions(uniqueKey: "k"))
        #expect(outbox.accepted.last == "d", "no TTL: the key went with the end of its task")
    }

    @Test("unique keys come back from the journal: a held key still answers with its holder after a restart")
    func uniqueKeysRestored() throws {
        engine.table.journaling = true
        submit("held", TaskOptions(uniqueKey: "nightly"))
        var bytes: [UInt8] = []
        _ = engine.table.journal.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        var replay = RecoveredState()
        for record in try JournalRecord.decodeAll(bytes) { replay.apply(record) }
        let restarted = BrokerEngine<RecordingOutbox>.recording()
        restarted.table.restore(replay)
        restarted.handleFrontend(Wire.envelope(from: other, .submit,
                                               [Wire.bytes("again"), Wire.bytes("echo"), TaskOptions(uniqueKey: "nightly").encoded(for: .current), Wire.bytes("{}")]), now: now)
        #expect(restarted.outbox.accepted == ["again held"])
    }
}
