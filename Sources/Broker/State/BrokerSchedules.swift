import ConveyorProtocol
import ConveyorSchedule
import Foundation

/// One periodic schedule the broker fires: its definition and figures (``ScheduleSpec``, as the
/// journal and the replies carry it), its args, and the parsed rule.
struct ActiveSchedule {
    var spec: ScheduleSpec
    let args: [UInt8]
    let rule: Schedule
    let policy: MissedTickPolicy
    /// The next tick (wall-clock ns).
    var due: UInt64

    /// Checks and parses `spec`; the error says what is wrong, for the caller to pass on.
    init(spec: ScheduleSpec, args: [UInt8], now: UInt64) throws(ScheduleError) {
        let kind: Schedule.Kind
        switch (spec.every, spec.cron) {
        case (let every?, nil):
            guard spec.timezone == nil else { throw ScheduleError("timezone goes with cron, not with every") }
            guard every <= 366 * 86_400 else { throw ScheduleError("every: the period must be at most 366 days (\(366 * 86_400) s), not \(every)") }
            kind = .every(seconds: every)
        case (nil, let cron?):
            kind = try Schedule.Kind.cron(cron, timeZone: spec.timezone)
        default:
            throw ScheduleError("a schedule needs exactly one of every (seconds) and cron (\"MIN HOUR DOM MON DOW\")")
        }
        switch spec.missed ?? "latest" {
        case "latest": policy = .latest
        case "all": policy = .all(limit: ScheduleSpec.maxMissedTicks)
        case "none": policy = .none
        default: throw ScheduleError("missed must be latest, all or none, not '\(spec.missed!.prefix(40))'")
        }
        if let timeout = spec.timeoutMilliseconds, timeout == 0 { throw ScheduleError("timeout_ms must be at least 1") }
        rule = try Schedule(id: spec.id, name: spec.name, args: RawJSON(bytes: args.isEmpty ? Array("{}".utf8) : args), kind: kind)
        self.args = rule.args.bytes
        self.spec = spec
        let seconds = Int64(now / 1_000_000_000)
        if self.spec.createdMilliseconds == nil { self.spec.createdMilliseconds = now / 1_000_000 }
        if self.spec.lastTick == nil { self.spec.lastTick = seconds }
        self.spec.fired = spec.fired ?? 0
        self.spec.skipped = spec.skipped ?? 0
        due = .max
        updateNext(now: now)
        guard self.spec.nextTick != nil else { throw ScheduleError("cron expression '\(spec.cron ?? "")' never fires") }
    }

    /// The next tick after `now` (or after the last tick fired, if that is later).
    mutating func updateNext(now: UInt64) {
        let after = max(Double(now / 1_000_000_000), Double(spec.lastTick ?? 0))
        if let next = rule.nextTick(after: Date(timeIntervalSince1970: after)) {
            spec.nextTick = Int64(next.timeIntervalSince1970)
            due = UInt64(max(0, spec.nextTick!)) &* 1_000_000_000
        } else {
            spec.nextTick = nil
            due = .max
        }
    }

    /// The ticks to fire at `now`, by the missed-tick policy, oldest first.
    func ticks(now: UInt64) -> [Date] {
        rule.ticksToFire(lastFired: Date(timeIntervalSince1970: TimeInterval(spec.lastTick ?? 0)),
                         now: Date(timeIntervalSince1970: TimeInterval(now / 1_000_000_000)), policy: policy)
    }

    /// The options of a tick's task.
    var options: TaskOptions {
        TaskOptions(timeoutMilliseconds: spec.timeoutMilliseconds ?? TaskOptions.default.timeoutMilliseconds,
                    priority: spec.priority ?? 0, maxAttempts: spec.maxAttempts ?? 1)
    }

    /// The spec as JSON, without the args (what the journal keeps beside them).
    var json: [UInt8] { Array((try? JSONEncoder.sorted.encode(spec)) ?? Data()) }

    /// The spec as JSON with its args inside (`"args":…`), for replies.
    var replyJSON: String {
        var text = String(decoding: json, as: UTF8.self)
        text.removeLast()
        return text + #","args":"# + String(decoding: args, as: UTF8.self) + "}"
    }
}

/// The broker's schedules, by id, and when the next one is due: the tick looks at them only then.
struct BrokerSchedules {
    var byID: [String: ActiveSchedule] = [:]
    /// The earliest ``ActiveSchedule/due`` (wall-clock ns; `.max` without schedules).
    private(set) var nextDue: UInt64 = .max

    mutating func recomputeNextDue() {
        nextDue = byID.values.map(\.due).min() ?? .max
    }
}

extension JSONEncoder {
    /// Sorted keys: the same schedule is the same bytes (journal records, tests).
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
