@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Webhook callbacks in the broker (Webhook.swift): a task with a callback URL gets, when it ends,
/// a delivery task of the reserved name, journaled before the task's end; a cut between the two
/// records drops the delivery at recovery; producers cannot submit the reserved name.
@Suite("Webhook deliveries in the broker")
struct WebhookBrokerTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    let now = BrokerInstant(wall: 1_800_000_000_000_000_000, monotonic: 5_000_000_000)
    let producer: [UInt8] = [0x50, 1]
    static let url = "http://127.0.0.1:9/hook?x=1"

    func consumer(_ n: UInt8, names: [String]) {
        let info = ReadyInfo(capacity: 4, tasks: names, host: "h", pid: Int(n), threads: 4, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, name: String = "echo", _ options: TaskOptions) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), options.encoded(for: .current), Wire.bytes(#"{"n":1}"#)]),
                              now: now)
    }

    func done(_ id: String, _ status: String, body: String, from n: UInt8) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done,
                                           [Wire.bytes(id), Wire.bytes(status), Wire.bytes(body), Wire.bytes(#"{"host":"h","attempts":1}"#)]),
                             now: now)
    }

    func deliveryArgs(_ id: String) throws -> [String: Any] {
        let task = try #require(engine.table[id])
        return try #require(try JSONSerialization.jsonObject(with: Data(task.args)) as? [String: Any])
    }

    @Test("a finished task with a callback URL gets one queued delivery carrying its result; the delivery's own result goes to no producer")
    func deliveryMade() throws {
        consumer(1, names: ["echo"])
        submit("t1", TaskOptions(callbackURL: Self.url))
        done("t1", "ok", body: #"{"n":1}"#, from: 1)
        let id = Webhook.deliveryID(sequence: try #require(engine.table["t1"]).sequence)
        let delivery = try #require(engine.table[id])
        #expect(delivery.name == Webhook.taskName && delivery.isQueued, "no consumer serves deliveries yet")
        #expect(delivery.options == Webhook.deliveryOptions)
        let args = try deliveryArgs(id)
        #expect(args["url"] as? String == Self.url && args["parent"] as? String == "t1")
        let event = try #require(args["event"] as? [String: Any])
        #expect(event["id"] as? String == "t1" && event["name"] as? String == "echo" && event["status"] as? String == "succeeded")
        #expect((event["result"] as? [String: Any])?["n"] as? Int == 1 && event["error"] == nil)
        #expect((event["worker"] as? [String: Any])?["host"] as? String == "h")
        #expect((event["finished_at"] as? String)?.hasPrefix("2027-01-15T08:00:00.000Z") == true, "\(event["finished_at"] ?? "")")

        consumer(2, names: [Webhook.taskName])
        #expect(engine.outbox.dispatches.last?.id == id && engine.outbox.dispatches.last?.consumer == [0x43, 2])
        let resultsBefore = engine.outbox.results.count
        done(id, "ok", body: #"{"status":204}"#, from: 2)
        #expect(engine.table[id]?.isDone == true)
        #expect(engine.outbox.results.count == resultsBefore, "no producer asked for the delivery's result")
        #expect(engine.table.records.keys.filter { $0.hasPrefix(Webhook.taskName) }.count == 1, "one delivery, none for the delivery")
    }

    @Test("a cancelled or timed-out task with a callback gets a delivery saying so; a task without one gets none")
    func everyEnd() throws {
        submit("c1", TaskOptions(callbackURL: Self.url))
        submit("plain", TaskOptions())
        #expect(engine.table.cancel("c1", now: now.wall) == .cancelled)
        #expect(engine.table.cancel("plain", now: now.wall) == .cancelled)
        let id = Webhook.deliveryID(sequence: try #require(engine.table["c1"]).sequence)
        let event = try #require(try deliveryArgs(id)["event"] as? [String: Any])
        #expect(event["status"] as? String == "cancelled")
        #expect((event["error"] as? [String: Any])?["kind"] as? String == "cancelled")
        #expect(engine.table.records.keys.filter { $0.hasPrefix(Webhook.taskName) }.count == 1)
    }

    @Test("the delivery's accepted record comes before the task's finished record, in the same turn")
    func journalOrder() throws {
        engine.table.journaling = true
        consumer(1, names: ["echo"])
        submit("t1", TaskOptions(callbackURL: Self.url))
        done("t1", "error", body: #"{"error":"boom"}"#, from: 1)
        var chunk: [UInt8] = []
        _ = engine.table.journal.take(into: &chunk)
        JournalEncoder.sealChecksums(&chunk)
        let records = try JournalRecord.decodeAll(chunk).map { "\($0.kind.name):\($0.id)" }
        let id = Webhook.deliveryID(sequence: try #require(engine.table["t1"]).sequence)
        #expect(records == ["accepted:t1", "dispatched:t1", "accepted:\(id)", "finished:t1"], "\(records)")
    }

    @Test("a journal cut between the delivery and the task's end drops the delivery at recovery; a whole one keeps it")
    func orphanDropped() throws {
        engine.table.journaling = true
        consumer(1, names: ["echo"])
        submit("t1", TaskOptions(callbackURL: Self.url))
        done("t1", "ok", body: "{}", from: 1)
        var chunk: [UInt8] = []
        _ = engine.table.journal.take(into: &chunk)
        JournalEncoder.sealChecksums(&chunk)
        let records = try JournalRecord.decodeAll(chunk)
        let id = Webhook.deliveryID(sequence: try #require(engine.table["t1"]).sequence)

        var whole = RecoveredState()
        for record in records { whole.apply(record) }
        let kept = BrokerEngine<RecordingOutbox>.recording()
        kept.table.restore(whole)
        #expect(kept.table[id]?.isQueued == true && kept.table["t1"]?.isDone == true)

        var cut = RecoveredState()
        for record in records.dropLast() { cut.apply(record) }
        let dropped = BrokerEngine<RecordingOutbox>.recording()
        dropped.table.restore(cut)
        #expect(dropped.table[id] == nil, "the end was lost: no delivery until the task ends again")
        #expect(dropped.table["t1"]?.isQueued == true, "the task runs again")
        #expect(dropped.table.queue.count == 1)
    }

    @Test("producers cannot submit the reserved name; a callback URL that is not http(s) is rejected, saying why")
    func refusals() {
        submit("r1", name: Webhook.taskName, TaskOptions())
        submit("r2", TaskOptions(callbackURL: "ftp://example.com/x"))
        #expect(engine.outbox.accepted.isEmpty)
        #expect(engine.outbox.rejected.first { $0.id == "r1" }?.reason.contains("the broker's own") == true)
        #expect(engine.outbox.rejected.first { $0.id == "r2" }?.reason.contains("must start with http:// or https://") == true,
                "\(engine.outbox.rejected)")
    }

    @Test("callback URL checks and the ISO 8601 time")
    func formats() {
        #expect(Webhook.problem(callbackURL: "https://hooks.example.com/a") == nil)
        #expect(Webhook.problem(callbackURL: "http://user@[::1]:8080/x") == nil)
        #expect(Webhook.problem(callbackURL: "http:///nohost")?.contains("no host") == true)
        #expect(Webhook.problem(callbackURL: "http://a b")?.contains("visible ASCII") == true)
        #expect(Webhook.problem(callbackURL: "http://" + String(repeating: "a", count: 2_100))?.contains("1-2048") == true)
        #expect(Webhook.iso8601(nanoseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Webhook.iso8601(nanoseconds: 951_782_400_123_000_000) == "2000-02-29T00:00:00.123Z")
        #expect(Webhook.iso8601(nanoseconds: 1_800_000_000_000_000_000) == "2027-01-15T08:00:00.000Z")
    }
}
