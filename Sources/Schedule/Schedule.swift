public import ConveyorProtocol
public import Foundation

/// A periodic task: every tick of `kind` enqueues one task `name(args)` whose id is
/// ``tickID(scheduleID:tick:)``, so that a tick fired twice (after a restart) is one task.
/// docs/SCHEDULES.md describes the rules.
public struct Schedule: Sendable, Equatable {
    /// When a schedule ticks.
    public enum Kind: Sendable, Equatable {
        /// Every `seconds` seconds, at the multiples of the period counted from the Unix epoch
        /// (`every(3600)` ticks on the hour in UTC), so ticks do not drift and survive restarts.
        case every(seconds: Int64)
        /// A cron expression evaluated on the wall clock of a time zone.
        case cron(CronExpression, timeZone: TimeZone)

        /// A cron kind from its text and an IANA time zone name (`Europe/Berlin`; UTC when nil).
        public static func cron(_ expression: String, timeZone identifier: String? = nil) throws(ScheduleError) -> Kind {
            let parsed: CronExpression
            do { parsed = try CronExpression(expression) } catch { throw ScheduleError(error.message) }
            guard let identifier else { return .cron(parsed, timeZone: .gmt) }
            guard let zone = TimeZone(identifier: identifier) else {
                throw ScheduleError("unknown time zone '\(identifier)': use an IANA name such as Europe/Berlin or UTC")
            }
            return .cron(parsed, timeZone: zone)
        }

        /// The first tick strictly after `date` (nil for a cron expression that never matches).
        public func next(after date: Date) -> Date? {
            switch self {
            case .every(let seconds):
                let now = Int64(date.timeIntervalSince1970.rounded(.down))
                return Date(timeIntervalSince1970: TimeInterval((Civil.floorDiv(now, seconds) + 1) * seconds))
            case .cron(let expression, let zone):
                return expression.next(after: date, in: zone)
            }
        }

        /// The latest tick at or before `date`, if there is one after `floor` (exclusive).
        func latest(atOrBefore date: Date, after floor: Date) -> Date? {
            latest(atOrBefore: date, after: floor, count: 1).last
        }

        /// Up to `count` of the latest ticks in (`floor`, `date`], oldest first.
        func latest(atOrBefore date: Date, after floor: Date, count: Int) -> [Date] {
            guard count > 0, floor < date else { return [] }
            if case .every(let seconds) = self {
                let last = Civil.floorDiv(Int64(date.timeIntervalSince1970.rounded(.down)), seconds) * seconds
                var ticks: [Date] = []
                var tick = last
                while ticks.count < count, TimeInterval(tick) > floor.timeIntervalSince1970 {
                    ticks.append(Date(timeIntervalSince1970: TimeInterval(tick)))
                    tick -= seconds
                }
                return ticks.reversed()
            }
            // A cron expression only steps forward: scan a window back from `date`, doubling it
            // until it holds `count` ticks or reaches `floor`.
            var window: TimeInterval = 3600
            while true {
                let from = max(floor, date.addingTimeInterval(-window))
                var ticks: [Date] = []
                var cursor = from
                while let tick = next(after: cursor), tick <= date {
                    ticks.append(tick)
                    if ticks.count > count { ticks.removeFirst() }
                    cursor = tick
                }
                if ticks.count >= count || from == floor { return ticks }
                window *= 2
            }
        }
    }

    /// The schedule's id: 1-``maxIDBytes`` bytes of visible ASCII.
    public let id: String
    /// The task name each tick enqueues.
    public let name: String
    /// The task's args, JSON.
    public let args: RawJSON
    public let kind: Kind

    /// A schedule id's length at most: a tick id, `sched:<id>:<unix seconds>`, must fit a task
    /// id (``Limits/maxIdentifierBytes``) with room for 12 characters of seconds.
    public static let maxIDBytes = Limits.maxIdentifierBytes - "sched::".utf8.count - 12

    public init(id: String, name: String, args: RawJSON = RawJSON("{}"), kind: Kind) throws(ScheduleError) {
        guard Self.isVisibleASCII(id, maxBytes: Self.maxIDBytes) else {
            throw ScheduleError("schedule id must be 1-\(Self.maxIDBytes) characters of visible ASCII")
        }
        guard Self.isVisibleASCII(name, maxBytes: Limits.maxIdentifierBytes) else {
            throw ScheduleError("task name must be 1-\(Limits.maxIdentifierBytes) characters of visible ASCII")
        }
        do { try JSONValidator.validate(args.bytes) } catch { throw ScheduleError("args are not JSON: \(error)") }
        if case .every(let seconds) = kind, seconds < 1 {
            throw ScheduleError("every: the period must be at least 1 second, not \(seconds)")
        }
        self.id = id
        self.name = name
        self.args = args
        self.kind = kind
    }

    static func isVisibleASCII(_ text: String, maxBytes: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= maxBytes && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// The first tick strictly after `date`.
    public func nextTick(after date: Date) -> Date? { kind.next(after: date) }

    /// The id of the task a tick enqueues: `sched:<schedule id>:<tick's Unix seconds>`.
    public static func tickID(scheduleID: String, tick: Date) -> String {
        "sched:\(scheduleID):\(Int64(tick.timeIntervalSince1970.rounded(.down)))"
    }

    public func tickID(for tick: Date) -> String { Self.tickID(scheduleID: id, tick: tick) }

    /// The ticks to fire now: those due are the ticks after `lastFired` (the last tick fired, or
    /// when the schedule was added) up to `now`; `policy` says which of them fire, oldest first.
    /// A tick counts as on time, not missed, while `now` is at most `grace` seconds past it.
    public func ticksToFire(lastFired: Date, now: Date, policy: MissedTickPolicy = .latest, grace: TimeInterval = Schedule.defaultGrace) -> [Date] {
        switch policy {
        case .latest:
            return kind.latest(atOrBefore: now, after: lastFired).map { [$0] } ?? []
        case .all(let limit):
            return kind.latest(atOrBefore: now, after: lastFired, count: max(0, limit))
        case .none:
            guard let tick = kind.latest(atOrBefore: now, after: lastFired), now.timeIntervalSince(tick) <= grace else { return [] }
            return [tick]
        }
    }

    /// How late a tick may fire and still count as on time (``MissedTickPolicy/none``).
    public static let defaultGrace: TimeInterval = 60
}

/// What to do with the ticks a schedule missed (the broker was down, or busy past a tick).
public enum MissedTickPolicy: Sendable, Hashable {
    /// Fire the latest due tick once, late if need be; older missed ticks are skipped. The default.
    case latest
    /// Fire every due tick, oldest first, but at most `limit` of them: the latest ones.
    case all(limit: Int)
    /// Fire no missed tick: only a tick that is on time (within the grace) fires.
    case none
}

/// Why a schedule was refused.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
