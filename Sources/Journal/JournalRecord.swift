public import ConveyorProtocol

/// One record of the journal: what one transition of the broker's task state machine changed, or,
/// in a snapshot, one task or dead letter as it stands. Recovery replays them in order
/// (``RecoveredState/apply(_:)``). The binary layout is in docs/RELIABILITY.md ("The journal's
/// format"); ``JournalEncoder`` writes it, ``JournalRecord/init(type:payload:)`` reads it.
public enum JournalRecord: Sendable, Equatable {
    /// A new task, queued: everything needed to run it again.
    case accepted(TaskEntry)
    /// A resubmission from another route: results go to `producer` from now on.
    case rerouted(id: String, producer: [UInt8])
    /// Sent to a consumer; `attempts` counts this attempt.
    case dispatched(id: String, attempts: UInt32)
    /// Back in the queue (handed back, its consumer lost, or its backoff over).
    case queued(id: String, attempts: UInt32)
    /// Waiting out a retry backoff until `notBefore` (wall-clock ns).
    case delayed(id: String, attempts: UInt32, notBefore: UInt64)
    /// Ended, with the result kept for `status` and resubmissions.
    case finished(id: String, result: ResultEntry)
    /// The result retention let the task go.
    case evicted(id: String)
    /// A task that used up its attempts, kept for operators.
    case deadLettered(DeadLetterEntry)
    /// Dead letters taken (requeued or purged): those with `id`, or all when it is empty.
    case deadLettersTaken(id: String)
    /// A snapshot's form of one live task or kept result.
    case task(TaskEntry)
    /// Who submitted a task, when the broker authenticates clients (docs/SECURITY.md): only they
    /// (and an admin) may see it and cancel it. Written after its `accepted` (or `task`) record.
    /// Skippable (type 0x81): an older broker that skips it only loses the ownership check.
    case owned(id: String, owner: String)
    /// `conveyor pause NAME`: tasks of that name are not dispatched until it is resumed; they
    /// stay queued. A snapshot holds one for each name paused. Skippable (type 0x82): an older
    /// broker that skips it dispatches the name again, losing the pause but no task.
    case paused(name: String)
    /// `conveyor resume NAME`: the name is dispatched again. Skippable (type 0x83).
    case resumed(name: String)
    /// `conveyor limit NAME`: the name's global limits now, as the JSON of a `NameLimit`; an
    /// empty `json` clears them. A snapshot holds one for each limited name. Skippable (type
    /// 0x84): an older broker that skips it dispatches the name without limits.
    case limit(name: String, json: [UInt8])
    /// `conveyor schedule add` (and each tick, with its figures): the schedule as the JSON of a
    /// `ScheduleSpec` and its args; an empty `json` removes it. The last record of an id wins,
    /// so a tick's record (its `last_tick`) is in the same commit as the task it enqueued.
    /// Skippable (type 0x85): an older broker that skips it fires no schedule.
    case schedule(id: String, json: [UInt8], args: [UInt8])

    /// Record types. Types with ``skippableBit`` set may be skipped by a reader that does not know
    /// them; any other unknown type makes the reader refuse the journal (docs/RELIABILITY.md,
    /// "Upgrade rules").
    public enum Kind: UInt8, Sendable, CaseIterable {
        case accepted = 1, rerouted, dispatched, queued, delayed, finished, evicted, deadLettered,
             deadLettersTaken, task
        case owned = 0x81, paused, resumed, limit, schedule

        public static let skippableBit: UInt8 = 0x80

        public var name: String {
            switch self {
            case .accepted: "accepted"
            case .rerouted: "rerouted"
            case .dispatched: "dispatched"
            case .queued: "queued"
            case .delayed: "delayed"
            case .finished: "finished"
            case .evicted: "evicted"
            case .deadLettered: "dead_lettered"
            case .deadLettersTaken: "dead_letters_taken"
            case .task: "task"
            case .owned: "owned"
            case .paused: "paused"
            case .resumed: "resumed"
            case .limit: "limit"
            case .schedule: "schedule"
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .accepted: .accepted
        case .rerouted: .rerouted
        case .dispatched: .dispatched
        case .queued: .queued
        case .delayed: .delayed
        case .finished: .finished
        case .evicted: .evicted
        case .deadLettered: .deadLettered
        case .deadLettersTaken: .deadLettersTaken
        case .task: .task
        case .owned: .owned
        case .paused: .paused
        case .resumed: .resumed
        case .limit: .limit
        case .schedule: .schedule
        }
    }

    /// The task id the record is about ("" for all dead letters, and for a pause, resume, limit or
    /// schedule).
    public var id: String {
        switch self {
        case .accepted(let task), .task(let task): task.id
        case .rerouted(let id, _), .dispatched(let id, _), .queued(let id, _), .delayed(let id, _, _),
             .finished(let id, _), .evicted(let id), .deadLettersTaken(let id), .owned(let id, _): id
        case .deadLettered(let letter): letter.id
        case .paused, .resumed, .limit, .schedule: ""
        }
    }
}

/// Where a task stands, as a snapshot records it.
public enum TaskEntryState: UInt8, Sendable {
    case queued = 0, delayed = 1, running = 2, done = 3
}

/// A task as the journal keeps it.
public struct TaskEntry: Sendable, Equatable {
    public var id: String
    public var name: String
    public var args: [UInt8]
    public var options: TaskOptions
    public var producer: [UInt8]
    /// Order of arrival.
    public var sequence: UInt64
    /// When it times out (wall-clock ns since the Unix epoch).
    public var deadline: UInt64
    public var state: TaskEntryState
    public var attempts: UInt32
    public var notBefore: UInt64
    public var result: ResultEntry?
    /// Who submitted it (an `owned` record), when the broker authenticates clients.
    public var owner: String?

    public init(id: String, name: String, args: [UInt8], options: TaskOptions, producer: [UInt8], sequence: UInt64,
                deadline: UInt64, state: TaskEntryState = .queued, attempts: UInt32 = 0, notBefore: UInt64 = 0,
                result: ResultEntry? = nil) {
        self.id = id
        self.name = name
        self.args = args
        self.options = options
        self.producer = producer
        self.sequence = sequence
        self.deadline = deadline
        self.state = state
        self.attempts = attempts
        self.notBefore = notBefore
        self.result = result
    }
}

/// A finished task's result as the journal keeps it: the frames' bytes, sent again untouched.
public struct ResultEntry: Sendable, Equatable {
    public var status: TaskStatus
    public var body: [UInt8]
    public var info: [UInt8]
    /// When it finished (wall-clock ns), for the result retention.
    public var finishedAt: UInt64

    public init(status: TaskStatus, body: [UInt8], info: [UInt8], finishedAt: UInt64) {
        self.status = status
        self.body = body
        self.info = info
        self.finishedAt = finishedAt
    }
}

/// A dead letter as the journal keeps it.
public struct DeadLetterEntry: Sendable, Equatable {
    public var id: String
    public var name: String
    public var attempts: UInt32
    public var reason: String
    public var args: [UInt8]
    public var options: TaskOptions
    public var producer: [UInt8]

    public init(id: String, name: String, attempts: UInt32, reason: String, args: [UInt8], options: TaskOptions,
                producer: [UInt8]) {
        self.id = id
        self.name = name
        self.attempts = attempts
        self.reason = reason
        self.args = args
        self.options = options
        self.producer = producer
    }
}
