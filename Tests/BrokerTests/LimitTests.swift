@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Global limits per task name (`LIMIT`, State/TaskTable+Limits.swift) and weights in the fair
/// dispatch (TaskQueue.swift), driven through the engine as the socket loop drives it (which
/// settles the limits after every message and tick).
@Suite("Global limits and weights per task name")
struct LimitTests {
    let engine: BrokerEngine<RecordingOutbox>
    let start: UInt64 = 1_800_000_000_000_000_000
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]
    let operatorKey: [UInt8] = [0x50, 9]

    init() {
        engine = .recording()
    }

    func at(_ milliseconds: UInt64) -> BrokerInstant {
        BrokerInstant(wall: start + milliseconds * 1_000_000, monotonic: 5_000_000_000 + milliseconds * 1_000_000)
    }

    func consumer(_ n: UInt8, tasks: [String], capacity: Int = 4, threads: Int = 4, at ms: UInt64 = 0) {
        let info = ReadyInfo(capacity: capacity, tasks: tasks, host: "h", pid: Int(n), threads: threads, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: at(ms))
    }

    func submit(_ id: String, _ name: String, at ms: UInt64 = 0) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), TaskOptions().encoded(for: .current), Wire.bytes("{}")]), now: at(ms))
    }

    /// A DONE from consumer `n`, then what the loop does after each message.
    func done(_ id: String, by n: UInt8, at ms: UInt64 = 0) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done,
                                           [Wire.bytes(id), Wire.bytes("ok"), Wire.bytes("{}"), Wire.bytes("{}")]), now: at(ms))
        settle(at: ms)
    }

    func settle(at ms: UInt64) {
        if engine.table.limitsNeedSettling(now: at(ms).wall) { engine.table.settleLimits(now: at(ms).wall) }
    }

    @discardableResult
    func limit(_ json: String, at ms: UInt64 = 0) -> [String: Any] {
        outbox.messages.removeAll()
        engine.handleFrontend(Wire.envelope(from: operatorKey, .limit, [Wire.bytes(json)]), now: at(ms))
        let replies = outbox.messages.filter { $0.command == .limitReply }
        #expect(replies.count == 1, "one LIMIT_REPLY")
        guard let body = replies.first?.body.first else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    var dispatched: [String] { outbox.dispatches.map(\.id) }

    @Test("concurrency 2 across two consumers: never more than 2 dispatched at once; each finish lets exactly one more go")
    func concurrencyAcrossConsumers() {
        consumer(1, tasks: ["resize", "echo"], capacity: 8, threads: 4)
        consumer(2, tasks: ["resize", "echo"], capacity: 8, threads: 4)
        let reply = limit(#"{"name":"resize","concurrency":2}"#)
        #expect(reply["changed"] as? Bool == true)
        for n in 1...10 { submit("r\(n)", "resize") }
        #expect(dispatched == ["r1", "r2"], "two at once, though 16 threads are free")
        #expect(engine.table.runningCount == 2)
        // No head-of-line blocking: another name goes at once.
        submit("e1", "echo")
        #expect(dispatched.last == "e1")
        var finished = 0
        while let next = outbox.dispatches.first(where: { $0.id.hasPrefix("r") && engine.table[$0.id]?.isRunning == true }) {
            done(next.id, by: next.consumer[1])
            finished += 1
            let running = (1...10).filter { engine.table["r\($0)"]?.isRunning == true }.count
            #expect(running <= 2, "after \(finished) finished: \(running) running")
        }
        #expect(finished == 10)
        #expect((1...10).allSatisfy { engine.table["r\($0)"]?.isDone == true })
        let figures = engine.statistics().limits?.first
        #expect(figures?.name == "resize" && figures?.running == 0 && figures?.limit.concurrency == 2)
        #expect((figures?.throttled ?? 0) >= 1)
    }

    @Test("rate 10/s with burst 3: 3 go at once, then one per 100 ms as the tick finds a token; other names are not held")
    func rateIsATokenBucket() {
        consumer(1, tasks: ["mail", "echo"], capacity: 100, threads: 100)
        limit(#"{"name":"mail","rate":10,"burst":3}"#)
        for n in 1...10 { submit("m\(n)", "mail") }
        #expect(dispatched == ["m1", "m2", "m3"])
        submit("e1", "echo")
        #expect(dispatched.count == 4 && dispatched.last == "e1")
        var counts: [Int] = []
        for ms in stride(from: 50 as UInt64, through: 700, by: 50) {
            settle(at: ms)
            counts.append(dispatched.filter { $0.hasPrefix("m") }.count)
        }
        // A token every 100 ms: at 100 ms the 4th, at 200 ms the 5th, ... at 700 ms the 10th.
        #expect(counts == [3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10], "\(counts)")
        let figures = engine.statistics().limits?.first
        #expect(figures?.limit.rate == 10 && figures?.limit.bucketSize == 3)
    }

    @Test("weights: 100,000 of A queued first, then 100 of B at the same weight: B's go in turn with A's; at weight 2, B gets twice A's dispatches")
    func weights() {
        for n in 1...100_000 { submit("a\(n)", "A") }
        for n in 1...100 { submit("b\(n)", "B") }
        consumer(1, tasks: ["A", "B"], capacity: 1, threads: 1)
        for _ in 0..<200 {
            guard let last = outbox.dispatches.last else { break }
            done(last.id, by: 1)
        }
        let first200 = dispatched.prefix(200)
        #expect(first200.filter { $0.hasPrefix("b") }.count == 100, "all of B's within the first 200 dispatches")
        #expect(engine.table.queue.countsByName["A"]! >= 90_000, "at least 90 % of A's still queued")

        let weighted = BrokerEngine<RecordingOutbox>.recording()
        weighted.handleFrontend(Wire.envelope(from: operatorKey, .limit, [Wire.bytes(#"{"name":"B","weight":2}"#)]), now: at(0))
        for n in 1...600 {
            for name in ["A", "B"] {
                weighted.handleFrontend(Wire.envelope(from: producer, .submit, [Wire.bytes("\(name)\(n)"), Wire.bytes(name), [], Wire.bytes("{}")]), now: at(0))
            }
        }
        let info = ReadyInfo(capacity: 1, tasks: ["A", "B"], host: "h", pid: 1, threads: 1, heartbeatMilliseconds: 1000)
        weighted.handleBackend(Wire.envelope(from: [0x43, 1], .ready, [Array(try! JSONEncoder().encode(info))]), now: at(0))
        for _ in 0..<599 {
            guard let last = weighted.outbox.dispatches.last else { break }
            weighted.handleBackend(Wire.envelope(from: [0x43, 1], .done, [Wire.bytes(last.id), Wire.bytes("ok"), Wire.bytes("{}"), Wire.bytes("{}")]), now: at(0))
        }
        let names = weighted.outbox.dispatches.prefix(600).map { $0.id.first! }
        let a = names.filter { $0 == "A" }.count, b = names.filter { $0 == "B" }.count
        #expect(a == 200 && b == 400, "B at weight 2 gets twice A's share while both wait: \(a) A, \(b) B")
    }

    @Test("bad limits are answered with an error naming the field; clear removes every limit and lets the queue go")
    func badAndClear() {
        #expect((limit(#"{"name":"x","rate":0}"#)["error"] as? String)?.contains("rate must be") == true)
        #expect((limit(#"{"name":"x","burst":5}"#)["error"] as? String)?.contains("burst needs a rate") == true)
        #expect((limit(#"{"name":"x","concurrency":0}"#)["error"] as? String)?.contains("conveyor pause") == true)
        #expect((limit(#"{"name":"x","weight":5000}"#)["error"] as? String)?.contains("weight must be 1-1000") == true)
        #expect((limit(#"{"name":"bad name","concurrency":1}"#)["error"] as? String)?.contains("visible ASCII") == true)
        #expect((limit("not json")["error"] as? String)?.contains("not a limit request") == true)
        #expect(engine.table.nameLimits.limits.isEmpty)

        consumer(1, tasks: ["x"], capacity: 8, threads: 8)
        limit(#"{"name":"x","concurrency":1}"#)
        for n in 1...4 { submit("x\(n)", "x") }
        #expect(dispatched == ["x1"])
        // A change merges: the concurrency stays when a weight is set.
        let merged = limit(#"{"name":"x","weight":3}"#)
        #expect((merged["limit"] as? [String: Any])?["limit"] as? [String: Int] == ["concurrency": 1, "weight": 3])
        let cleared = limit(#"{"name":"x","clear":true}"#)
        #expect(cleared["changed"] as? Bool == true && cleared["limit"] is NSNull)
        #expect(dispatched == ["x1", "x2", "x3", "x4"], "cleared: the waiting tasks go at once")
        #expect(engine.statistics().limits == [])
    }

    @Test("a pause and a limit together: resume leaves a name at its limit blocked; limits are journaled and restored")
    func pauseAndDurability() throws {
        engine.table.journaling = true
        consumer(1, tasks: ["x"], capacity: 8, threads: 8)
        limit(#"{"name":"x","concurrency":1,"rate":100,"burst":50}"#)
        submit("x1", "x")
        engine.handleFrontend(Wire.envelope(from: operatorKey, .pause, [Wire.bytes("pause"), Wire.bytes("x")]), now: at(0))
        submit("x2", "x")
        engine.handleFrontend(Wire.envelope(from: operatorKey, .pause, [Wire.bytes("resume"), Wire.bytes("x")]), now: at(0))
        #expect(dispatched == ["x1"], "resumed, but still at its concurrency")
        done("x1", by: 1)
        #expect(dispatched == ["x1", "x2"])

        var bytes: [UInt8] = []
        _ = engine.table.journal.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        var replay = RecoveredState()
        for record in try JournalRecord.decodeAll(bytes) { replay.apply(record) }
        #expect(replay.limits.keys.sorted() == ["x"])
        let restarted = BrokerEngine<RecordingOutbox>.recording()
        restarted.table.restore(replay)
        #expect(restarted.statistics().limits?.map(\.limit) == [NameLimit(rate: 100, burst: 50, concurrency: 1)])
        #expect(JournalRecord.Kind.limit.rawValue & JournalRecord.Kind.skippableBit != 0)
    }
}
