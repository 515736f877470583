import ConveyorProtocol
import ConveyorSchedule
import Foundation
import Testing

/// Schedules: every() alignment, tick ids and the missed-tick policy (docs/SCHEDULES.md).
@Suite("Schedules, tick ids and missed ticks")
struct ScheduleTests {
    static func at(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    static func hourly() throws -> Schedule {
        try Schedule(id: "report", name: "email.report", args: RawJSON(#"{"to":"ops"}"#), kind: .every(seconds: 3600))
    }

    static let everyCases: [(period: Int64, after: Int64, expected: Int64)] = [
        (60, 0, 60),
        (60, 59, 60),
        (60, 60, 120),
        (3600, 1_735_689_600 + 1799, 1_735_689_600 + 3600),
        (86400, 1_735_700_000, 1_735_776_000),
        (7, 100, 105),
        (90, -1, 0),
    ]

    @Test("every(n) ticks at the multiples of n from the Unix epoch, strictly after the instant", arguments: everyCases)
    func everyIsAligned(_ row: (period: Int64, after: Int64, expected: Int64)) {
        #expect(Schedule.Kind.every(seconds: row.period).next(after: Self.at(row.after)) == Self.at(row.expected))
    }

    @Test("every(n) from a fractional instant: 59.5 s is before the tick at 60, 60.5 s after it")
    func everyFractional() {
        let kind = Schedule.Kind.every(seconds: 60)
        #expect(kind.next(after: Date(timeIntervalSince1970: 59.5)) == Self.at(60))
        #expect(kind.next(after: Date(timeIntervalSince1970: 60.5)) == Self.at(120))
    }

    @Test("A cron kind from text and a zone name; an unknown zone or bad expression is refused")
    func cronKind() throws {
        let kind = try Schedule.Kind.cron("0 9 * * MON-FRI", timeZone: "Europe/Berlin")
        // From Monday 2025-01-06 00:00 UTC: 09:00 in Berlin is 08:00 UTC.
        #expect(kind.next(after: Self.at(1_736_121_600)) == Self.at(1_736_121_600 + 8 * 3600))
        #expect(try Schedule.Kind.cron("0 0 * * *").next(after: Self.at(0)) == Self.at(86400), "UTC without a zone")
        #expect(throws: ScheduleError("unknown time zone 'Mars/Olympus_Mons': use an IANA name such as Europe/Berlin or UTC")) {
            try Schedule.Kind.cron("* * * * *", timeZone: "Mars/Olympus_Mons")
        }
        #expect(throws: ScheduleError("hour field: 25 is out of range 0-23")) { try Schedule.Kind.cron("0 25 * * *") }
    }

    @Test("The tick id is sched:<id>:<unix seconds>, a valid task id even for the longest schedule id")
    func tickIDs() throws {
        #expect(Schedule.tickID(scheduleID: "report", tick: Self.at(1_767_225_600)) == "sched:report:1767225600")
        #expect(try Self.hourly().tickID(for: Date(timeIntervalSince1970: 3600.75)) == "sched:report:3600")
        let longest = String(repeating: "x", count: Schedule.maxIDBytes)
        let schedule = try Schedule(id: longest, name: "n", kind: .every(seconds: 1))
        let id = schedule.tickID(for: Self.at(999_999_999_999))
        #expect(id.utf8.count <= Limits.maxIdentifierBytes)
        #expect(id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
    }

    static let tooLongID = String(repeating: "x", count: 237)
    static let badSchedules: [(id: String, name: String, args: String, period: Int64, message: String)] = [
        ("", "n", "{}", 60, "schedule id must be 1-236 characters of visible ASCII"),
        ("has space", "n", "{}", 60, "schedule id must be 1-236 characters of visible ASCII"),
        (tooLongID, "n", "{}", 60, "schedule id must be 1-236 characters of visible ASCII"),
        ("ok", "", "{}", 60, "task name must be 1-255 characters of visible ASCII"),
        ("ok", "caf\u{E9}", "{}", 60, "task name must be 1-255 characters of visible ASCII"),
        ("ok", "n", "{", 60, "args are not JSON: invalid JSON at byte 1: expected a string key"),
        ("ok", "n", "{}", 0, "every: the period must be at least 1 second, not 0"),
    ]

    @Test("Schedules refuse a bad id, task name, args or period", arguments: badSchedules)
    func refuses(_ row: (id: String, name: String, args: String, period: Int64, message: String)) {
        #expect(Schedule.maxIDBytes == 236)
        #expect(throws: ScheduleError(row.message)) {
            try Schedule(id: row.id, name: row.name, args: RawJSON(row.args), kind: .every(seconds: row.period))
        }
    }

    @Test("Missed ticks of every(): the latest once by default, all (the latest `limit`), or none unless on time")
    func missedEvery() throws {
        let schedule = try Self.hourly()
        let last = Self.at(10 * 3600)
        // Down from 10:00 to 15:20: ticks 11:00 … 15:00 were missed.
        let now = Self.at(15 * 3600 + 1200)
        #expect(schedule.ticksToFire(lastFired: last, now: now) == [Self.at(15 * 3600)])
        #expect(schedule.ticksToFire(lastFired: last, now: now, policy: .all(limit: 100)) == (11...15).map { Self.at(Int64($0) * 3600) })
        #expect(schedule.ticksToFire(lastFired: last, now: now, policy: .all(limit: 2)) == [Self.at(14 * 3600), Self.at(15 * 3600)])
        #expect(schedule.ticksToFire(lastFired: last, now: now, policy: .all(limit: 0)).isEmpty)
        #expect(schedule.ticksToFire(lastFired: last, now: now, policy: .none).isEmpty)
        // On time (5 s late): every policy fires it.
        let onTime = Self.at(11 * 3600 + 5)
        for policy in [MissedTickPolicy.latest, .all(limit: 10), .none] {
            #expect(schedule.ticksToFire(lastFired: last, now: onTime, policy: policy) == [Self.at(11 * 3600)], "\(policy)")
        }
        #expect(schedule.ticksToFire(lastFired: last, now: Self.at(11 * 3600 + 61), policy: .none).isEmpty, "past the 60 s grace")
        #expect(schedule.ticksToFire(lastFired: last, now: Self.at(11 * 3600 + 61), policy: .none, grace: 120) == [Self.at(11 * 3600)])
        // Nothing due: before the next tick, or the tick already fired.
        #expect(schedule.ticksToFire(lastFired: last, now: Self.at(10 * 3600 + 3599)).isEmpty)
        #expect(schedule.ticksToFire(lastFired: Self.at(11 * 3600), now: Self.at(11 * 3600 + 30)).isEmpty)
    }

    @Test("Missed ticks of a cron schedule, including a long outage and a yearly schedule")
    func missedCron() throws {
        let daily = try Schedule(id: "d", name: "n", kind: .cron("30 6 * * *", timeZone: "UTC"))
        let day: Int64 = 86400
        let base: Int64 = 1_735_689_600 // 2025-01-01T00:00Z
        let last = Self.at(base + 6 * 3600 + 1800)
        let now = Self.at(base + 40 * day + 7 * 3600) // 40 days later, 07:00
        #expect(daily.ticksToFire(lastFired: last, now: now) == [Self.at(base + 40 * day + 6 * 3600 + 1800)])
        let all = daily.ticksToFire(lastFired: last, now: now, policy: .all(limit: 1000))
        #expect(all.count == 40)
        #expect(all.first == Self.at(base + day + 6 * 3600 + 1800))
        #expect(all == all.sorted())
        #expect(daily.ticksToFire(lastFired: last, now: now, policy: .all(limit: 3)).count == 3)
        #expect(daily.ticksToFire(lastFired: last, now: now, policy: .none).isEmpty)
        #expect(daily.ticksToFire(lastFired: last, now: Self.at(base + day + 6 * 3600 + 1810), policy: .none)
            == [Self.at(base + day + 6 * 3600 + 1800)])

        let yearly = try Schedule(id: "y", name: "n", kind: .cron("@yearly"))
        // Last fired 2020-01-01, now mid-2025: the latest missed tick is 2025-01-01.
        #expect(yearly.ticksToFire(lastFired: Self.at(1_577_836_800), now: Self.at(base + 180 * day)) == [Self.at(base)])
        #expect(yearly.ticksToFire(lastFired: Self.at(1_577_836_800), now: Self.at(base + 180 * day), policy: .all(limit: 10)).count == 5)
        #expect(yearly.ticksToFire(lastFired: Self.at(base), now: Self.at(base + 180 * day)).isEmpty)
    }
}
