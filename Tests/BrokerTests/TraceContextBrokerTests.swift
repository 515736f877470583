@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// The broker keeps a task's trace context with the task (PROTOCOL.md §6.1): a valid one as it
/// came, a plain one that is not valid dropped with the task accepted, a critical one that is not
/// valid rejected.
@Suite("Trace context in the broker")
struct TraceContextBrokerTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    let engine = BrokerEngine<RecordingOutbox>.recording()
    let now = BrokerInstant(wall: 1_800_000_000_000_000_000, monotonic: 5_000_000_000)
    let producer: [UInt8] = [0x50, 1]

    func submit(_ id: String, options: [UInt8]) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit, [Wire.bytes(id), Wire.bytes("echo"), options, Wire.bytes("{}")]),
                              now: now)
    }

    func tlv(_ tag: UInt16, _ text: String) -> [UInt8] {
        let value = Array(text.utf8)
        return [UInt8(tag >> 8), UInt8(tag & 0xFF), UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
    }

    @Test("A traceparent and tracestate given at submit are kept on the task record")
    func kept() {
        submit("t-1", options: TaskOptions(traceparent: Self.parent, tracestate: "rojo=1").encoded(for: .v3))
        #expect(engine.outbox.accepted == ["t-1"])
        #expect(engine.table.records["t-1"]?.options.traceparent == Self.parent)
        #expect(engine.table.records["t-1"]?.options.tracestate == "rojo=1")
    }

    @Test("A plain traceparent that is not valid is dropped; the task is accepted without it")
    func plainInvalidDropped() {
        submit("t-2", options: tlv(OptionTag.traceParent, "00-not-a-trace") + tlv(OptionTag.traceState, "rojo=1"))
        #expect(engine.outbox.accepted == ["t-2"] && engine.outbox.rejected.isEmpty)
        #expect(engine.table.records["t-2"]?.options == TaskOptions())
    }

    @Test("A critical traceparent that is not valid rejects the task, saying why")
    func criticalInvalidRejected() {
        submit("t-3", options: tlv(OptionTag.traceParent | TaggedFields.criticalBit, "00-not-a-trace"))
        #expect(engine.outbox.accepted.isEmpty)
        #expect(engine.outbox.rejected.first?.id == "t-3")
        #expect(engine.outbox.rejected.first?.reason.contains("traceparent (0x8009) is not valid: it has 14 characters") == true,
                "\(engine.outbox.rejected)")
        #expect(engine.table.records["t-3"] == nil)
    }
}
