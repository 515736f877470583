@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Reserved tasks (dispatched past a consumer's threads, waiting in its prefetch buffer) and the
/// `revoke` transition that lets a producer's cancel take one back, driven through the engine.
@Suite("Reserved tasks and REVOKE")
struct ReservedTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = [0x50, 1]
    let consumerKey: [UInt8] = [0x43, 1]

    /// A consumer with one thread and room for three tasks; `revoke`: whether it announces it.
    func consumer(revoke: Bool = true) {
        let info = ReadyInfo(capacity: 3, tasks: ["sleep"], host: "h", pid: 1, threads: 1, heartbeatMilliseconds: 1000,
                             capabilities: revoke ? [Capability.revoke.rawValue] : nil)
        engine.handleBackend(Wire.envelope(from: consumerKey, .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes("sleep"), TaskOptions().encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func cancel(_ id: String) {
        engine.handleFrontend(Wire.envelope(from: producer, .cancel, [Wire.bytes(id)]), now: now)
    }

    func done(_ id: String, _ status: String) {
        engine.handleBackend(Wire.envelope(from: consumerKey, .done,
                                           [Wire.bytes(id), Wire.bytes(status), Wire.bytes("{}"), Wire.bytes("{}")]), now: now)
    }

    func status(_ id: String) -> String {
        outbox.messages.removeAll()
        engine.handleFrontend(Wire.envelope(from: producer, .status, [Wire.bytes(id)]), now: now)
        return outbox.messages.first { $0.command == .statusReply }.map { String(decoding: $0.body[1], as: UTF8.self) } ?? "none"
    }

    var cancelReplies: [String] {
        outbox.messages.filter { $0.command == .cancelReply }.map { String(decoding: $0.body[1], as: UTF8.self) }
    }

    @Test("of the tasks a consumer holds, the first `threads` dispatched are running and the rest reserved; stats count them apart")
    func reservedByDispatchOrder() {
        consumer()
        for id in ["a", "b", "c"] { submit(id) }
        #expect(status("a") == "running")
        #expect(status("b") == "reserved" && status("c") == "reserved")
        #expect(engine.statistics().running == 3 && engine.statistics().reserved == 2)
        done("a", "ok")
        #expect(status("b") == "running", "the next one in dispatch order has the thread now")
        #expect(status("c") == "reserved")
        #expect(engine.statistics().reserved == 1)
    }

    @Test("cancel of a reserved task sends REVOKE; the consumer's hand-back ends it cancelled and answers the cancel")
    func revokeHandedBack() {
        consumer()
        for id in ["a", "b", "c"] { submit(id) }
        outbox.messages.removeAll()
        cancel("c")
        #expect(outbox.revoked.map(\.id) == ["c"], "REVOKE sent to the consumer holding it")
        #expect(cancelReplies.isEmpty, "answered once the consumer has handed it back")
        done("c", "requeue")
        engine.tick(now: now)
        #expect(cancelReplies == ["cancelled"])
        #expect(engine.table["c"]?.state == .done)
        #expect(outbox.results.last?.id == "c" && outbox.results.last?.status == .cancelled)
        #expect(engine.table.count(of: .revoke) == 1)
        #expect(engine.table.consumers[consumerKey]!.inFlight == ["a", "b"], "its credit came back")
        #expect(engine.table.revoking.isEmpty && engine.pendingCancels.isEmpty)
    }

    @Test("a revoked task that had started meanwhile runs on: after the wait the cancel is answered running, and a later hand-back requeues it")
    mutating func revokeTooLate() {
        consumer()
        for id in ["a", "b"] { submit(id) }
        outbox.messages.removeAll()
        cancel("b")
        engine.tick(now: now)
        #expect(cancelReplies.isEmpty)
        monotonic += BrokerEngine<RecordingOutbox>.revokeWait + 1
        engine.tick(now: now)
        #expect(cancelReplies == ["running"])
        #expect(engine.table.revoking.isEmpty)
        done("b", "requeue")
        #expect(engine.table.count(of: .requeue) == 1 && engine.table.count(of: .revoke) == 0,
                "a hand-back after the answer is a plain hand-back (queued, and sent again)")
        #expect(engine.table["b"]?.state != .done)
    }

    @Test("the running task and a consumer without `revoke` answer running at once, as before")
    func noRevoke() {
        consumer(revoke: false)
        for id in ["a", "b"] { submit(id) }
        outbox.messages.removeAll()
        cancel("a")
        cancel("b")
        #expect(cancelReplies == ["running", "running"])
        #expect(outbox.revoked.isEmpty)
    }

    @Test("a task that finishes before the consumer sees the REVOKE answers done")
    func finishedFirst() {
        consumer()
        for id in ["a", "b"] { submit(id) }
        outbox.messages.removeAll()
        cancel("b")
        done("a", "ok")
        done("b", "ok")
        engine.tick(now: now)
        #expect(cancelReplies == ["done"])
        #expect(engine.table["b"]?.result?.status == .ok)
    }
}
