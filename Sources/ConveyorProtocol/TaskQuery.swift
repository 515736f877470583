/// A state a task is listed in by `TASKS` (docs/PROTOCOL.md §4.8.3). Finer than the states of
/// `STATUS`: a finished task is listed by how it ended, and dead letters are listed too.
///
/// An open set, like ``Capability``: a page from a newer broker may carry a word this build does
/// not know, and it is kept as it came (read it as "held by the broker", §9.1). ``all`` are the
/// words this build knows and may ask for.
public struct TaskListState: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }

    /// Waiting for a consumer with credit.
    public static let queued = TaskListState(rawValue: "queued")
    /// Waiting for a time before it may be queued: today the end of a retry backoff.
    public static let scheduled = TaskListState(rawValue: "scheduled")
    /// Dispatched to a consumer whose threads are all busy with earlier tasks: it waits in that
    /// consumer's prefetch buffer, not started (`cancel` takes it back).
    public static let reserved = TaskListState(rawValue: "reserved")
    /// On one of a consumer's threads.
    public static let running = TaskListState(rawValue: "running")
    /// Finished with status `ok`; the result is kept.
    public static let succeeded = TaskListState(rawValue: "succeeded")
    /// Finished with status `error` or `timeout` (or any other status that is not `ok` or
    /// `cancelled`); the result is kept.
    public static let failed = TaskListState(rawValue: "failed")
    /// Finished with status `cancelled`; the result is kept.
    public static let cancelled = TaskListState(rawValue: "cancelled")
    /// A dead letter: it used up its attempts and waits for an operator to requeue or purge it.
    public static let dead = TaskListState(rawValue: "dead")

    /// Every state this build knows, in the order a listing goes through them.
    public static let all: [TaskListState] = [.queued, .scheduled, .reserved, .running, .succeeded, .failed, .cancelled, .dead]

    /// The states of a task the broker has not finished.
    public static let unfinished: Set<TaskListState> = [.queued, .scheduled, .reserved, .running]
    /// The states of a finished task whose result is kept.
    public static let finished: Set<TaskListState> = [.succeeded, .failed, .cancelled]

    /// The listed state of a task that ended with `status`.
    public init(finishedWith status: TaskStatus) {
        switch status {
        case .ok: self = .succeeded
        case .cancelled: self = .cancelled
        default: self = .failed
        }
    }
}

/// What `TASKS` asks for (docs/PROTOCOL.md §4.8.3): tasks in a state, of a name, changed since a
/// time, a page of at most ``limit`` at a time, going on from a ``cursor`` the previous page gave.
/// One JSON object on the wire; ``json`` writes it, `Decodable` reads and checks it (the broker's
/// side), throwing a ``TaskQueryError`` that names the field that is wrong.
public struct TaskQuery: Sendable, Equatable, Decodable {
    /// Only tasks in this state; `nil` for every state.
    public var state: TaskListState?
    /// Only tasks of this name.
    public var name: String?
    /// Only tasks whose latest time the broker knows is at or after this one (wall clock,
    /// milliseconds since the Unix epoch): for a finished task or a dead letter, when it ended
    /// (`updated_at`); for any other, when it was accepted (`accepted_at`).
    public var sinceMilliseconds: Int64?
    /// Tasks in this page at most, 1 to ``maxLimit``.
    public var limit: Int
    /// Where to go on from: the previous page's ``TaskPage/nextCursor``; `nil` for the first page.
    public var cursor: String?

    /// The largest page a broker answers.
    public static let maxLimit = 1_000
    /// The page size when the query gives none.
    public static let defaultLimit = 100

    public init(state: TaskListState? = nil, name: String? = nil, sinceMilliseconds: Int64? = nil,
                limit: Int = TaskQuery.defaultLimit, cursor: String? = nil) {
        self.state = state
        self.name = name
        self.sinceMilliseconds = sinceMilliseconds
        self.limit = limit
        self.cursor = cursor
    }

    enum CodingKeys: String, CodingKey {
        case state, name, limit, cursor
        case sinceMilliseconds = "since_ms"
    }

    /// Reads and checks a query. Keys it does not know are ignored (§9.1) and `null` is the same
    /// as an absent key; anything else wrong throws a ``TaskQueryError`` naming the field.
    public init(from decoder: any Decoder) throws {
        let c: KeyedDecodingContainer<CodingKeys>
        do {
            c = try decoder.container(keyedBy: CodingKeys.self)
        } catch {
            throw TaskQueryError(field: nil, "the TASKS body must be one JSON object, such as {\"state\":\"failed\",\"limit\":100}")
        }
        func value<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ expected: String) throws -> T? {
            do {
                return try c.decodeIfPresent(T.self, forKey: key)
            } catch {
                throw TaskQueryError(field: key.stringValue, "\(key.stringValue) must be \(expected)")
            }
        }
        let words = TaskListState.all.map(\.rawValue)
        let choice = words.dropLast().joined(separator: ", ") + " or " + words.last!
        if let word = try value(.state, String.self, "a string: \(choice)") {
            let state = TaskListState(rawValue: word)
            guard TaskListState.all.contains(state) else {
                throw TaskQueryError(field: "state", "state '\(word.prefix(40))' is not a task state: use \(choice)")
            }
            self.state = state
        }
        if let name = try value(.name, String.self, "a task name (a string)") {
            let bytes = name.utf8
            guard !bytes.isEmpty, bytes.count <= Limits.maxIdentifierBytes, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw TaskQueryError(field: "name", "name must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII, as task names are")
            }
            self.name = name
        }
        let since = "a whole number of milliseconds since the Unix epoch, 0 or more"
        if let ms = try value(.sinceMilliseconds, Int64.self, since) {
            guard ms >= 0 else { throw TaskQueryError(field: "since_ms", "since_ms must be \(since), not \(ms)") }
            sinceMilliseconds = ms
        }
        let range = "a whole number from 1 to \(Self.maxLimit)"
        let limit = try value(.limit, Int.self, range) ?? Self.defaultLimit
        guard (1...Self.maxLimit).contains(limit) else {
            throw TaskQueryError(field: "limit", "limit must be \(range), not \(limit)")
        }
        self.limit = limit
        cursor = try value(.cursor, String.self, "the next_cursor string of the previous page")
    }

    /// The JSON text, keys sorted and no spaces; absent fields are left out.
    public var json: String {
        var parts: [String] = []
        if let cursor { parts.append("\"cursor\":" + JSONText.quoted(cursor)) }
        parts.append("\"limit\":\(limit)")
        if let name { parts.append("\"name\":" + JSONText.quoted(name)) }
        if let sinceMilliseconds { parts.append("\"since_ms\":\(sinceMilliseconds)") }
        if let state { parts.append("\"state\":" + JSONText.quoted(state.rawValue)) }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

/// A `TASKS` query the broker refuses: which field, and what it should be.
public struct TaskQueryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The query's key that is wrong; `nil` when the body as a whole is.
    public let field: String?
    public let message: String

    public init(field: String?, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }
}

/// One task of a `TASKS` page.
public struct TaskSummary: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var state: TaskListState
    /// Attempts started so far (for a finished task: in all).
    public var attempts: Int
    /// When the broker accepted it: wall clock, milliseconds since the Unix epoch. Absent only
    /// for a dead letter restored from the journal. For a task submitted with a `not_before`
    /// time, when it became (or becomes) ready to run: that time, or its acceptance if later.
    public var acceptedAt: Int64?
    /// For a `scheduled` task, when it comes due (its `not_before` time, or the end of its retry
    /// backoff), in the same unit.
    public var dueAt: Int64?
    /// When it ended (a finished task) or was dead-lettered (a dead letter), in the same unit;
    /// absent for tasks not finished (the broker keeps no time of a dispatch or a retry) and for
    /// dead letters restored from the journal.
    public var updatedAt: Int64?
    /// The identity that submitted it (its key's name, where clients are authenticated), or the
    /// routing id its results go to, as text.
    public var producer: String?
    /// For a running or reserved task, the consumer that holds it: `HOST:PID`.
    public var consumer: String?
    /// For a finished task, the status of its result (`ok`, `error`, `timeout`, `cancelled`).
    public var status: String?
    /// For a task that did not succeed, its error body's message (at most 300 characters), or a
    /// dead letter's reason; and the body's `kind`.
    public var error: String?
    public var kind: String?

    enum CodingKeys: String, CodingKey {
        case id, name, state, attempts, producer, consumer, status, error, kind
        case acceptedAt = "accepted_at"
        case updatedAt = "updated_at"
        case dueAt = "due_at"
    }

    public init(id: String, name: String, state: TaskListState, attempts: Int, acceptedAt: Int64? = nil,
                updatedAt: Int64? = nil, producer: String? = nil, consumer: String? = nil, status: String? = nil,
                error: String? = nil, kind: String? = nil) {
        self.id = id
        self.name = name
        self.state = state
        self.attempts = attempts
        self.acceptedAt = acceptedAt
        self.updatedAt = updatedAt
        self.producer = producer
        self.consumer = consumer
        self.status = status
        self.error = error
        self.kind = kind
    }

    /// The JSON text, keys sorted and no spaces; absent fields are left out. What the broker
    /// sends and `conveyor tasks --json` prints.
    public var json: String {
        var parts: [String] = []
        if let acceptedAt { parts.append("\"accepted_at\":\(acceptedAt)") }
        parts.append("\"attempts\":\(attempts)")
        if let consumer { parts.append("\"consumer\":" + JSONText.quoted(consumer)) }
        if let dueAt { parts.append("\"due_at\":\(dueAt)") }
        if let error { parts.append("\"error\":" + JSONText.quoted(error)) }
        parts.append("\"id\":" + JSONText.quoted(id))
        if let kind { parts.append("\"kind\":" + JSONText.quoted(kind)) }
        parts.append("\"name\":" + JSONText.quoted(name))
        if let producer { parts.append("\"producer\":" + JSONText.quoted(producer)) }
        parts.append("\"state\":" + JSONText.quoted(state.rawValue))
        if let status { parts.append("\"status\":" + JSONText.quoted(status)) }
        if let updatedAt { parts.append("\"updated_at\":\(updatedAt)") }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

/// One page of `TASKS`: the tasks found, where to go on from, and how much the broker looked at.
public struct TaskPage: Sendable, Equatable, Codable {
    public var tasks: [TaskSummary]
    /// The cursor of the next page; `nil` once the listing is complete. A page may hold fewer
    /// tasks than asked for (none, even) and still have a next one: the broker looks at a bounded
    /// number of records per request.
    public var nextCursor: String?
    /// Records the broker looked at for this page, whether they matched or not: at most
    /// ``maxExamined`` (docs/PROTOCOL.md §4.8.3 says what counts).
    public var examined: Int

    /// The records a broker looks at for one page at most, however many tasks it holds.
    public static let maxExamined = 10_000

    enum CodingKeys: String, CodingKey {
        case tasks, examined
        case nextCursor = "next_cursor"
    }

    public init(tasks: [TaskSummary], nextCursor: String?, examined: Int) {
        self.tasks = tasks
        self.nextCursor = nextCursor
        self.examined = examined
    }

    /// The JSON text, keys sorted and no spaces, `next_cursor` `null` on the last page.
    public var json: String {
        "{\"examined\":\(examined),\"next_cursor\":" + (nextCursor.map(JSONText.quoted) ?? "null")
            + ",\"tasks\":[" + tasks.map(\.json).joined(separator: ",") + "]}"
    }
}
