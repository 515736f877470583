/// How a consumer ended one attempt of a task: the status frame of a `DONE` group
/// (docs/PROTOCOL.md §5.3). The consumer writes it, the broker matches it; no other spelling of
/// these words exists in the package.
public enum DoneStatus: String, Sendable, CaseIterable, Equatable {
    /// The handler returned; the body is its result.
    case ok
    /// The attempt failed for good (input error, unknown task, an error the handler says not to
    /// retry); the body is `{"error", "kind"}`.
    case error
    /// The handler threw; the broker retries while attempts remain, else ends the task as `error`.
    case retry
    /// Handed back unstarted (a draining consumer, a slowed pace): the attempt does not count.
    case requeue

    /// Matches the frame's bytes without building a `String`; `nil` for any other word, which the
    /// receiver treats as a bad message (§5.3).
    public init?(bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 2 where bytes[0] == UInt8(ascii: "o") && bytes[1] == UInt8(ascii: "k"): self = .ok
        case 5 where bytes.elementsEqual("error".utf8): self = .error
        case 5 where bytes.elementsEqual("retry".utf8): self = .retry
        case 7 where bytes.elementsEqual("requeue".utf8): self = .requeue
        default: return nil
        }
    }

    /// Whether the task ends with this attempt whoever sent it (`ok`, `error`).
    public var isFinal: Bool { self == .ok || self == .error }
}

/// What a `DEAD_LETTERS` request does (docs/PROTOCOL.md §4.8).
public enum DeadLetterAction: String, Sendable, CaseIterable, Codable {
    /// Submit the dead letter's task again, with its attempts reset.
    case requeue
    /// Forget the dead letter.
    case purge
    /// List the recent failures (every task that ended without succeeding, dead letter or not),
    /// newest first; the id field names a task name to list only those (empty: all). Version 3.
    case failures
}
