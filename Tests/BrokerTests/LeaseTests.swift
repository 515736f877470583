@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Leases on dispatched work: a consumer that neither answers nor renews loses the task.
@Suite("Leases on dispatched tasks")
struct LeaseTests {
    let engine = BrokerEngine<RecordingOutbox>.recording { $0.leaseDuration = .seconds(30) }
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]

    func consumer(_ n: UInt8, capacity: Int = 1) {
        let info = ReadyInfo(capacity: capacity, tasks: ["echo"], host: "h", pid: Int(n), threads: capacity,
                             heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, _ options: TaskOptions = TaskOptions(timeoutMilliseconds: 3_600_000)) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes("echo"), options.encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func done(_ id: String, from n: UInt8) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done, [Wire.bytes(id), Wire.bytes("ok"), Wire.bytes(#""r""#), Wire.bytes("{}")]),
                             now: now)
    }

    func renew(_ ids: [String], from n: UInt8) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .renew, ids.map(Wire.bytes)), now: now)
    }

    /// Time passes; every consumer heartbeats (so none is declared dead).
    mutating func pass(seconds: UInt64, heartbeats: [UInt8] = [1, 2]) {
        for _ in 0..<seconds {
            wall += 1_000_000_000
            monotonic += 1_000_000_000
            for n in heartbeats { engine.handleBackend(Wire.envelope(from: [0x43, n], .heartbeat, []), now: now) }
            engine.tick(now: now)
        }
    }

    @Test("a lease that runs out: the task goes to another consumer, the attempt counted; the first keeps the thread busy")
    mutating func reclaim() {
        consumer(1)
        submit("t1")
        #expect(engine.table["t1"]?.holder == [0x43, 1])
        consumer(2)
        pass(seconds: 31)
        #expect(engine.table["t1"]?.holder == [0x43, 2], "taken back and given to the other consumer")
        #expect(engine.table.count(of: .reclaim) == 1)
        #expect(outbox.dispatches.last == .init(id: "t1", consumer: [0x43, 2], attempt: 2))
        let first = engine.table.consumers[[0x43, 1]]!
        #expect(first.inFlight.contains("t1") && first.credit == 0, "its thread still counts as busy")
        // The first consumer's late result still counts, once; then the second's is a duplicate.
        done("t1", from: 1)
        #expect(engine.table["t1"]?.isDone == true && outbox.results.count == 1)
        #expect(first.credit == 1)
        done("t1", from: 2)
        #expect(outbox.results.count == 1)
        #expect(engine.table.consumers[[0x43, 2]]!.credit == 1)
    }

    @Test("RENEW keeps the lease: a task renewed every few seconds is never taken back")
    mutating func renewKeeps() {
        consumer(1)
        consumer(2)
        submit("t1")
        let holder = engine.table["t1"]!.holder!
        let n = holder[1]
        for _ in 0..<10 {
            pass(seconds: 10)
            renew(["t1", "not-held"], from: n)
        }
        #expect(engine.table["t1"]?.holder == holder)
        #expect(engine.table.count(of: .reclaim) == 0)
        // A renewal from a consumer that does not hold it changes nothing.
        renew(["t1"], from: n == 1 ? 2 : 1)
        pass(seconds: 31)
        #expect(engine.table.count(of: .reclaim) == 1)
    }

    @Test("three leases run out with no answer: the consumer is quarantined until it answers one")
    mutating func quarantine() {
        consumer(1, capacity: 3)
        submit("a")
        submit("b")
        submit("c")
        pass(seconds: 31, heartbeats: [1])
        let hole = engine.table.consumers[[0x43, 1]]!
        #expect(hole.isQuarantined && hole.leasesExpired == 3)
        submit("d")
        #expect(engine.table["d"]?.isQueued == true, "nothing new for a quarantined consumer")
        done("a", from: 1)
        #expect(!hole.isQuarantined, "an answer lifts the quarantine")
        #expect(engine.statistics().consumers.first?.quarantined == false)
    }

    @Test("a task whose leases keep running out is dead-lettered, not passed around forever")
    mutating func leasesExhaust() {
        consumer(1, capacity: 2)
        consumer(2, capacity: 2)
        submit("t1")
        for _ in 0..<3 { pass(seconds: 31) }
        #expect(engine.table["t1"]?.isDone == true)
        #expect(engine.table.deadLetters.count == 1)
        #expect(outbox.results.last?.status == .error)
    }
}
