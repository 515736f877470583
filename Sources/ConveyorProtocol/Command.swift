/// The one-byte command in frame 1 of every message. docs/PROTOCOL.md is the reference.
public enum Command: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    // Producer → broker.
    case submit = 0x01
    case cancel = 0x02
    case status = 0x03
    case stats = 0x04
    /// Requeue or purge dead letters.
    case deadLetters = 0x07
    /// Either peer, both sockets (version 3): the sender's versions, role and capabilities. A
    /// producer or consumer may send it; the broker answers with its own.
    case hello = 0x08
    /// Producer → broker (version 3): cancel every waiting task of a name (an operator's purge).
    case purge = 0x09
    /// Producer → broker (version 3): how many bytes of the broker's messages the producer has
    /// read since its last READ (decimal), or `connected` on a new connection. The broker sends a
    /// connection at most its budget of unread bytes (docs/PROTOCOL.md §4.9). Sent at least once
    /// a heartbeat interval: it is also the producer's sign of life.
    case read = 0x0A
    /// Producer → broker (version 3, capability `tasks`): one page of the broker's tasks, chosen
    /// by a JSON query (``TaskQuery``); answered with ``tasksReply``.
    case tasks = 0x0B
    /// Producer → broker (version 3, capability `pause`): an action (`pause` or `resume`) and a
    /// task name. A paused name's tasks are accepted and queue but are not dispatched until it is
    /// resumed; answered with ``pauseReply``.
    case pause = 0x0C
    /// Producer → broker (version 3, capability `schedules`): an action (`add`, `list` or
    /// `remove`), a JSON body (a ``ScheduleSpec`` to add, `{"id"}` to remove, `{}` to list) and
    /// the args of a schedule added (empty otherwise); answered with ``scheduleReply``.
    case schedule = 0x0D
    /// Producer → broker (version 3, capability `limits`): a ``LimitRequest`` (JSON), which sets
    /// or clears the global limits of a task name; answered with ``limitReply``.
    case limit = 0x0E
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
    /// Broker → producer (version 3): how many tasks a PURGE cancelled.
    case purgeReply = 0x18
    /// Broker → producer (version 3): replies to this connection were dropped while it did not
    /// read them and it reads again; it should resubmit what it has no answer for. One JSON frame.
    case resume = 0x19
    /// Broker → producer (version 3): something the producer should know about a task it
    /// submitted, which does not change its outcome (no consumer serves its name yet). One JSON
    /// frame `{"id","name","notice","served"}`.
    case notice = 0x1A
    /// Broker → producer (version 3): one page of tasks (``TaskPage``), or `{"error"}` naming the
    /// field of the query that was wrong. One JSON frame.
    case tasksReply = 0x1B
    /// Broker → producer (version 3): what a PAUSE did, `{"action","name","paused","changed",
    /// "queued","running","served"}`, or `{"error"}`. One JSON frame.
    case pauseReply = 0x1C
    /// Broker → producer (version 3): what a SCHEDULE did, `{"action","schedules":[…]}` (the
    /// schedules added, removed or listed, each a ``ScheduleSpec`` with its `args`), or `{"error"}`.
    case scheduleReply = 0x1D
    /// Broker → producer (version 3): the name's limits after a LIMIT (a ``LimitFigures`` under
    /// `"limit"`, `null` once cleared, and `"changed"`), or `{"error"}`.
    case limitReply = 0x1E
    /// Broker → any peer: the peer's last message broke the protocol.
    case error = 0x1F
    // Consumer ↔ broker.
    case ready = 0x21
    case dispatch = 0x22
    case done = 0x23
    /// Consumer → broker (version 3): the ids of tasks it still holds, whose leases it renews.
    case renew = 0x24
    /// Broker → consumer (version 3, capability `revoke`): give back these tasks (one id per
    /// frame) if they have not started; the consumer answers each one it still held unstarted
    /// with a DONE of status `requeue`, and the broker ends it `cancelled`. A task that started
    /// runs on.
    case revoke = 0x25

    public var description: String {
        switch self {
        case .submit: "SUBMIT"
        case .cancel: "CANCEL"
        case .status: "STATUS"
        case .stats: "STATS"
        case .deadLetters: "DEAD_LETTERS"
        case .deadLettersReply: "DEAD_LETTERS_REPLY"
        case .hello: "HELLO"
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
        case .renew: "RENEW"
        case .revoke: "REVOKE"
        case .purge: "PURGE"
        case .purgeReply: "PURGE_REPLY"
        case .read: "READ"
        case .resume: "RESUME"
        case .notice: "NOTICE"
        case .tasks: "TASKS"
        case .tasksReply: "TASKS_REPLY"
        case .pause: "PAUSE"
        case .pauseReply: "PAUSE_REPLY"
        case .schedule: "SCHEDULE"
        case .scheduleReply: "SCHEDULE_REPLY"
        case .limit: "LIMIT"
        case .limitReply: "LIMIT_REPLY"
        }
    }

    /// The first protocol version that has this command. A message of an older version carrying it
    /// is an unknown command, as it would be to a peer of that version.
    public var since: ProtocolVersion {
        switch self {
        case .hello, .renew, .purge, .purgeReply, .read, .resume, .notice, .revoke, .tasks, .tasksReply, .pause, .pauseReply,
             .schedule, .scheduleReply, .limit, .limitReply: .v3
        default: .v2
        }
    }

    /// The number of frames in one group of this command's body, for commands that carry
    /// repeated groups (several tasks or results per message); `nil` for the others.
    public var groupSize: Int? {
        switch self {
        case .submit, .result, .dispatch, .done: 4
        case .rejected: 2
        case .accepted, .renew, .revoke: 1
        default: nil
        }
    }
}

/// How a task ended, as carried in result frames.
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    case ok, error, cancelled, timeout, rejected
    /// Never sent: what a receiver makes of a status word it does not know (one a newer broker
    /// added). The task is finished and did not succeed; its body is `{"error", "kind"}` like
    /// every non-`ok` body, or is to be shown as it is (docs/PROTOCOL.md §6.4).
    case unrecognized

    /// The status a received word names, or ``unrecognized``: never fails, never guesses `ok`.
    public init(wire text: some StringProtocol) {
        self = TaskStatus(rawValue: String(text)).flatMap { $0 == .unrecognized ? nil : $0 } ?? .unrecognized
    }

    /// ``init(wire:)`` on the bytes of a status field, without building a `String` (the
    /// producer's hot path, one per result).
    public init(bytes: UnsafeRawBufferPointer) {
        func equals(_ word: StaticString) -> Bool {
            bytes.count == word.utf8CodeUnitCount
                && bytes.elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        }
        if equals("ok") { self = .ok }
        else if equals("error") { self = .error }
        else if equals("timeout") { self = .timeout }
        else if equals("cancelled") { self = .cancelled }
        else if equals("rejected") { self = .rejected }
        else { self = .unrecognized }
    }

    /// The statuses a broker sends in `RESULT` and `STATUS_REPLY` in this version.
    public static let sentByBroker: [TaskStatus] = [.ok, .error, .cancelled, .timeout]
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
    /// Never sent: what a receiver makes of an outcome word it does not know. Read it as "not
    /// cancelled by this request as far as this client can tell"; ask `STATUS` to learn more.
    case unrecognized

    /// The outcome a received word names, or ``unrecognized``.
    public init(wire text: some StringProtocol) {
        self = CancelOutcome(rawValue: String(text)).flatMap { $0 == .unrecognized ? nil : $0 } ?? .unrecognized
    }
}

/// Where a task stands, as answered to `STATUS`.
public enum TaskState: String, Sendable, Codable {
    case queued, running, done, unknown
    /// Dispatched to a consumer that holds it in its prefetch buffer, not started: every thread
    /// of that consumer has an earlier task (version 3.1; sent as `running` to older peers).
    /// `cancel` takes it back.
    case reserved
    /// Waiting for its `not_before` time before its first run (version 3.2; sent as `queued` to
    /// version-2 peers): `STATUS_REPLY`'s info frame says when, `{"due_at": MS}`. `cancel`
    /// takes it back.
    case scheduled
    /// Never sent: what a receiver makes of a state word it does not know. The broker holds the task and it is not finished: only `done`
    /// means finished and only `unknown` means not held (docs/PROTOCOL.md §4.6).
    case unrecognized

    /// The state a received word names, or ``unrecognized``: never fails.
    public init(wire text: some StringProtocol) {
        self = TaskState(rawValue: String(text)).flatMap { $0 == .unrecognized ? nil : $0 } ?? .unrecognized
    }

    /// Whether the task has its result (`done`).
    public var isFinished: Bool { self == .done }
    /// Whether the broker holds the task: every state but `unknown`, unrecognized ones included.
    public var isHeld: Bool { self != .unknown }
}
