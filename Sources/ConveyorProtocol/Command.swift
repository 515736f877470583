/// The protocol tag that opens every Conveyor message: `CVY` and the protocol version.
public enum ProtocolTag {
    /// The version this build speaks. Version 2 packs the groups of the task-carrying commands
    /// into one frame (docs/PROTOCOL.md, "Packed groups").
    public static let currentText = "CVY2"
    public static let current: [UInt8] = Array(currentText.utf8)
    /// Every Conveyor tag starts with these bytes, whatever its version.
    public static let family: [UInt8] = Array("CVY".utf8)
}

/// The one-byte command in frame 1 of every message. docs/PROTOCOL.md is the reference.
public enum Command: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    // Producer → broker.
    case submit = 0x01
    case cancel = 0x02
    case status = 0x03
    case stats = 0x04
    /// Requeue or purge dead letters.
    case deadLetters = 0x07
    // Either direction, on both sockets.
    case heartbeat = 0x05
    case disconnect = 0x06
    // Broker → producer.
    case accepted = 0x11
    case rejected = 0x12
    case result = 0x13
    case cancelReply = 0x14
    case statusReply = 0x15
    case statsReply = 0x16
    case deadLettersReply = 0x17
    /// Broker → any peer: the peer's last message broke the protocol.
    case error = 0x1F
    // Consumer ↔ broker.
    case ready = 0x21
    case dispatch = 0x22
    case done = 0x23

    public var description: String {
        switch self {
        case .submit: "SUBMIT"
        case .cancel: "CANCEL"
        case .status: "STATUS"
        case .stats: "STATS"
        case .deadLetters: "DEAD_LETTERS"
        case .deadLettersReply: "DEAD_LETTERS_REPLY"
        case .heartbeat: "HEARTBEAT"
        case .disconnect: "DISCONNECT"
        case .accepted: "ACCEPTED"
        case .rejected: "REJECTED"
        case .result: "RESULT"
        case .cancelReply: "CANCEL_REPLY"
        case .statusReply: "STATUS_REPLY"
        case .statsReply: "STATS_REPLY"
        case .error: "ERROR"
        case .ready: "READY"
        case .dispatch: "DISPATCH"
        case .done: "DONE"
        }
    }

    /// The number of frames in one group of this command's body, for commands that carry
    /// repeated groups (several tasks or results per message); `nil` for the others.
    public var groupSize: Int? {
        switch self {
        case .submit, .result, .dispatch, .done: 4
        case .rejected: 2
        case .accepted: 1
        default: nil
        }
    }
}

/// How a task ended, as carried in result frames.
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    case ok, error, cancelled, timeout, rejected
}

/// What a `CANCEL` achieved.
public enum CancelOutcome: String, Sendable, Codable {
    /// The task was queued and is now removed; its producer gets a `cancelled` result.
    case cancelled
    /// The task is running on a consumer and cannot be cancelled (as with `concurrent.futures`).
    case running
    /// The task has already finished.
    case done
    /// The broker holds no task with that id.
    case unknown
}

/// Where a task stands, as answered to `STATUS`.
public enum TaskState: String, Sendable, Codable {
    case queued, running, done, unknown
}
