@testable import ConveyorBroker
import ConveyorProtocol
import Logging
import ZeroMQ

/// An outbox that records what the broker's state machine sends, in order, instead of sending it.
final class RecordingOutbox: BrokerOutbox {
    struct Dispatch: Equatable {
        let id: String
        let consumer: [UInt8]
        let attempt: UInt32
    }

    struct Delivery: Equatable {
        let id: String
        let status: TaskStatus
        let producer: [UInt8]
        let redelivery: Bool
    }

    var dispatches: [Dispatch] = []
    var results: [Delivery] = []
    var accepted: [String] = []
    var rejected: [(id: String, reason: String)] = []
    var messages: [(command: Command, side: BrokerSide, body: [[UInt8]])] = []

    func dispatch(_ task: TaskRecord, attempt: UInt32, timeoutMilliseconds: UInt32, to consumer: ConsumerRecord) {
        dispatches.append(Dispatch(id: task.id, consumer: consumer.key, attempt: attempt))
    }

    var revoked: [(id: String, consumer: [UInt8])] = []
    func revoke(_ id: String, on consumer: ConsumerRecord) { revoked.append((id, consumer.key)) }

    func result(id: String, _ result: StoredResult, to producer: [UInt8], redelivery: Bool) {
        results.append(Delivery(id: id, status: result.status, producer: producer, redelivery: redelivery))
    }

    var versions: [[UInt8]: ProtocolVersion] = [:]

    func producer(_ producer: [UInt8], speaks version: ProtocolVersion) {
        versions[producer] = version
    }

    func accepted(_ id: Frame, to producer: [UInt8], route: Frame, version: ProtocolVersion) {
        accepted.append(id.string)
    }

    func rejected(_ id: String, reason: String, to producer: [UInt8], route: Frame, version: ProtocolVersion) {
        rejected.append((id, reason))
    }

    /// READ reports, by producer (`nil`: a new connection).
    var reads: [(producer: [UInt8], bytes: Int?)] = []
    func producer(_ producer: [UInt8], read bytes: Int?) { reads.append((producer, bytes)) }
    func isDropping(to producer: [UInt8]) -> Bool { false }
    func dropped(to producer: [UInt8]) {}
    var unreadTotal: Int { 0 }
    var repliesDropped: Int { 0 }

    func send(_ message: OutgoingMessage, on side: BrokerSide) {
        // Frame 0 is the routing id, 1 the tag, 2 the command.
        let frames = message.frames.map { $0.bytes }
        guard frames.count >= 3, let command = Command(rawValue: frames[2].first ?? 0) else { return }
        messages.append((command, side, Array(frames.dropFirst(3))))
    }

    /// Everything recorded so far, forgotten.
    func clear() {
        dispatches.removeAll(keepingCapacity: true)
        results.removeAll(keepingCapacity: true)
        accepted.removeAll(keepingCapacity: true)
        rejected.removeAll(keepingCapacity: true)
        messages.removeAll(keepingCapacity: true)
        revoked.removeAll(keepingCapacity: true)
    }
}

/// Builds the messages peers send, as the socket loop would receive them.
enum Wire {
    static func envelope(from route: [UInt8], _ command: Command, _ fields: [[UInt8]]) -> Envelope {
        var message = OutgoingMessage(to: route, command)
        for field in fields { message.append(field) }
        return try! Envelope(frames: message.frames, fromRouter: true)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}

extension BrokerEngine where Outbox == RecordingOutbox {
    /// An engine over a recording outbox, with logging off.
    static func recording(_ configure: (inout BrokerConfiguration) -> Void = { _ in }) -> BrokerEngine<RecordingOutbox> {
        var config = BrokerConfiguration()
        configure(&config)
        var logger = Logger(label: "broker-tests")
        logger.logLevel = .critical
        return BrokerEngine(config: config, logger: logger, outbox: RecordingOutbox())
    }
}
