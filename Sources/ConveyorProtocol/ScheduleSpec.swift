/// A periodic schedule as the protocol carries it (`SCHEDULE`, docs/PROTOCOL.md §4.8.6): every
/// tick enqueues one task `name(args)` with the id `sched:<id>:<tick's Unix seconds>`. Exactly
/// one of `every` and `cron`. The args travel in a frame of their own; the broker's replies put
/// them in the JSON as `args`. The broker fills in the figures (`created_ms`, `last_tick`,
/// `next_tick`, `fired`, `skipped`).
public struct ScheduleSpec: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The period in seconds (ticks at its multiples since the Unix epoch).
    public var every: Int64?
    /// A five-field cron expression (`MIN HOUR DOM MON DOW`), on the clock of `timezone`.
    public var cron: String?
    /// An IANA time zone for `cron` (UTC when absent).
    public var timezone: String?
    /// Ticks missed while the broker was down: `latest` (the default: the latest one fires,
    /// once), `all` (each of them, at most 100), `none` (only ticks on time fire).
    public var missed: String?
    /// Options of each tick's task.
    public var priority: Int32?
    public var timeoutMilliseconds: UInt32?
    public var maxAttempts: UInt32?
    /// Set by the broker: when the schedule was added (ms since the epoch), the last tick fired
    /// and the next one (Unix seconds), ticks fired, ticks skipped (missed, or refused by a bound).
    public var createdMilliseconds: UInt64?
    public var lastTick: Int64?
    public var nextTick: Int64?
    public var fired: Int?
    public var skipped: Int?

    public init(id: String, name: String, every: Int64? = nil, cron: String? = nil, timezone: String? = nil,
                missed: String? = nil, priority: Int32? = nil, timeoutMilliseconds: UInt32? = nil, maxAttempts: UInt32? = nil) {
        self.id = id
        self.name = name
        self.every = every
        self.cron = cron
        self.timezone = timezone
        self.missed = missed
        self.priority = priority
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case id, name, every, cron, timezone, missed, priority, fired, skipped
        case timeoutMilliseconds = "timeout_ms"
        case maxAttempts = "max_attempts"
        case createdMilliseconds = "created_ms"
        case lastTick = "last_tick"
        case nextTick = "next_tick"
    }

    /// Schedules a broker holds at most.
    public static let maxSchedules = 10_000
    /// The most missed ticks `missed: all` fires after a restart.
    public static let maxMissedTicks = 100

    /// When it ticks, for people: `every 60 s` or `cron "0 3 * * *" (Europe/Berlin)`.
    public var when: String {
        if let every { return "every \(every) s" }
        return "cron \"\(cron ?? "")\"" + (timezone.map { " (\($0))" } ?? " (UTC)")
    }
}
