import ConveyorProtocol
import ZeroMQ

/// Which of the broker's two sockets a message leaves by.
enum BrokerSide: Sendable {
    /// The ROUTER producers connect to.
    case frontend
    /// The ROUTER consumers connect to.
    case backend
}

/// Where the broker's state machine puts what must go out. ``SocketOutbox`` gathers it into one
/// message per peer per loop turn and sends it; the tests record it instead.
protocol BrokerOutbox: AnyObject {
    /// One DISPATCH group for `consumer`.
    func dispatch(_ task: TaskRecord, attempt: UInt32, timeoutMilliseconds: UInt32, to consumer: ConsumerRecord)
    /// One RESULT group for the producer with routing id `producer`. `redelivery` when it is sent
    /// again to a producer that resubmitted a finished task.
    func result(id: String, _ result: StoredResult, to producer: [UInt8], redelivery: Bool)
    /// One ACCEPTED group (the task id, as received), in the version the SUBMIT came in.
    func accepted(_ id: Frame, to producer: [UInt8], route: Frame, version: ProtocolVersion)
    /// One REJECTED group, in the version the SUBMIT came in.
    func rejected(_ id: String, reason: String, to producer: [UInt8], route: Frame, version: ProtocolVersion)
    /// The producer with routing id `producer` now speaks `version`: RESULT messages to it are
    /// written in that version from now on.
    func producer(_ producer: [UInt8], speaks version: ProtocolVersion)
    /// REVOKE of the task `id` to `consumer`, after any DISPATCH to it still gathered (so that
    /// the consumer has the task before it is asked to give it back).
    func revoke(_ id: String, on consumer: ConsumerRecord)
    /// A whole message of its own (a reply, ERROR, HEARTBEAT, DISCONNECT), sent in order.
    func send(_ message: OutgoingMessage, on side: BrokerSide)
    /// The producer with routing id `producer` reports `bytes` more of the broker's messages read
    /// (`READ`); `nil` for a new connection, which has read nothing and holds nothing unread.
    func producer(_ producer: [UInt8], read bytes: Int?)
    /// Whether replies to `producer` are being dropped (it does not read): the engine need not
    /// build large ones, and counts each one it does not build with ``dropped(to:)``.
    func isDropping(to producer: [UInt8]) -> Bool
    func dropped(to producer: [UInt8])
    /// Bytes sent to producers and not reported read, and messages dropped for it.
    var unreadTotal: Int { get }
    var repliesDropped: Int { get }
}
