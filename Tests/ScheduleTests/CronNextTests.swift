import ConveyorSchedule
import Foundation
import Testing

/// Next fire times for known dates (docs/SCHEDULES.md, "Time zones and DST"); each expected
/// list is what croniter 7 with zoneinfo gives from the same start.
@Suite("Cron next fire times")
struct CronNextTests {
    static func instant(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { fatalError("bad test date \(text)") }
        return date
    }

    /// An instant written with the zone's offset at that instant, as croniter prints it.
    static func local(_ date: Date, _ zone: TimeZone) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = zone
        let text = formatter.string(from: date)
        return text.hasSuffix("Z") ? String(text.dropLast()) + "+00:00" : text
    }

    static func fires(_ expression: String, _ zoneName: String, from start: String, count: Int) throws -> [String] {
        let cron = try CronExpression(expression)
        let zone = try #require(TimeZone(identifier: zoneName))
        var fires: [String] = []
        var cursor = instant(start)
        for _ in 0..<count {
            guard let next = cron.next(after: cursor, in: zone) else { break }
            fires.append(local(next, zone))
            cursor = next
        }
        return fires
    }

    @Test("Spring forward: a time in the gap moves to the first minute after it, unless every hour is listed", arguments: [
        ("30 2 * * *", "America/New_York", "2025-03-08T12:00:00-05:00", ["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"]),
        ("30 * * * *", "America/New_York", "2025-03-09T00:00:00-05:00", ["2025-03-09T00:30:00-05:00", "2025-03-09T01:30:00-05:00", "2025-03-09T03:30:00-04:00"]),
        ("@daily", "America/New_York", "2025-03-08T12:00:00-05:00", ["2025-03-09T00:00:00-05:00", "2025-03-10T00:00:00-04:00"]),
        ("0 2 * * *", "Europe/Berlin", "2025-03-29T12:00:00+01:00", ["2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00"]),
        ("*/30 * * * *", "Europe/Berlin", "2025-03-30T01:00:00+01:00", ["2025-03-30T01:30:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T03:30:00+02:00"]),
        ("0 2 * * *", "Australia/Sydney", "2025-10-04T12:00:00+10:00", ["2025-10-05T03:00:00+11:00", "2025-10-06T02:00:00+11:00"]),
        ("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T12:00:00+10:30", ["2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"]),
    ])
    func springForward(_ expression: String, _ zone: String, _ start: String, _ expected: [String]) throws {
        #expect(try Self.fires(expression, zone, from: start, count: expected.count) == expected)
    }

    @Test("Fall back: a time that occurs twice fires at both instants, the earlier first", arguments: [
        ("30 1 * * *", "America/New_York", "2025-11-01T12:00:00-04:00", ["2025-11-02T01:30:00-04:00", "2025-11-02T01:30:00-05:00", "2025-11-03T01:30:00-05:00"]),
        ("*/20 * * * *", "America/New_York", "2025-11-02T00:30:00-04:00", [
            "2025-11-02T00:40:00-04:00", "2025-11-02T01:00:00-04:00", "2025-11-02T01:20:00-04:00", "2025-11-02T01:40:00-04:00",
            "2025-11-02T01:00:00-05:00", "2025-11-02T01:20:00-05:00", "2025-11-02T01:40:00-05:00", "2025-11-02T02:00:00-05:00",
        ]),
        ("30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00+02:00", ["2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"]),
        ("0 3 * * *", "Pacific/Auckland", "2025-04-05T12:00:00+13:00", ["2025-04-06T03:00:00+12:00", "2025-04-07T03:00:00+12:00"]),
        ("*/15 1-2 * * *", "Australia/Lord_Howe", "2025-04-05T12:00:00+11:00", [
            "2025-04-06T01:00:00+11:00", "2025-04-06T01:15:00+11:00", "2025-04-06T01:30:00+11:00", "2025-04-06T01:45:00+11:00",
            "2025-04-06T01:30:00+10:30", "2025-04-06T01:45:00+10:30", "2025-04-06T02:00:00+10:30",
        ]),
    ])
    func fallBack(_ expression: String, _ zone: String, _ start: String, _ expected: [String]) throws {
        #expect(try Self.fires(expression, zone, from: start, count: expected.count) == expected)
    }

    @Test("Calendar cases: leap days, macros, day 31, names, the DOM/DOW either rule, strictly after", arguments: [
        ("0 0 29 2 *", "UTC", "2025-01-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
        ("@yearly", "UTC", "2025-06-15T00:00:00+00:00", ["2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]),
        ("@yearly", "America/New_York", "2025-06-15T00:00:00-04:00", ["2026-01-01T00:00:00-05:00"]),
        ("@monthly", "UTC", "2025-01-31T00:00:00+00:00", ["2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"]),
        ("@weekly", "Europe/Berlin", "2025-01-01T00:00:00+01:00", ["2025-01-05T00:00:00+01:00", "2025-01-12T00:00:00+01:00"]),
        ("@hourly", "Asia/Kolkata", "2025-01-01T10:15:00+05:30", ["2025-01-01T11:00:00+05:30", "2025-01-01T12:00:00+05:30"]),
        ("0 0 * * *", "Asia/Kolkata", "2025-01-01T05:30:00+05:30", ["2025-01-02T00:00:00+05:30"]),
        ("0 0 31 * *", "UTC", "2025-01-31T00:00:00+00:00", ["2025-03-31T00:00:00+00:00", "2025-05-31T00:00:00+00:00", "2025-07-31T00:00:00+00:00"]),
        ("0 9 * JAN-MAR MON-FRI", "UTC", "2025-03-28T10:00:00+00:00", ["2025-03-31T09:00:00+00:00", "2026-01-01T09:00:00+00:00"]),
        ("0 12 * * 7", "UTC", "2025-01-01T00:00:00+00:00", ["2025-01-05T12:00:00+00:00", "2025-01-12T12:00:00+00:00"]),
        ("0 0 13 * FRI", "UTC", "2025-01-01T00:00:00+00:00", [
            "2025-01-03T00:00:00+00:00", "2025-01-10T00:00:00+00:00", "2025-01-13T00:00:00+00:00", "2025-01-17T00:00:00+00:00",
            "2025-01-24T00:00:00+00:00", "2025-01-31T00:00:00+00:00", "2025-02-07T00:00:00+00:00", "2025-02-13T00:00:00+00:00",
        ]),
        ("0 0 */1 * FRI", "UTC", "2025-01-01T00:00:00+00:00", ["2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00", "2025-01-04T00:00:00+00:00"]),
        ("0 0 1-31 * */2", "UTC", "2025-01-01T00:00:00+00:00", ["2025-01-02T00:00:00+00:00", "2025-01-04T00:00:00+00:00", "2025-01-05T00:00:00+00:00"]),
        ("0 * * * *", "UTC", "2025-01-01T12:00:00+00:00", ["2025-01-01T13:00:00+00:00"]),
    ])
    func calendar(_ expression: String, _ zone: String, _ start: String, _ expected: [String]) throws {
        #expect(try Self.fires(expression, zone, from: start, count: expected.count) == expected)
    }

    @Test("Seconds are dropped, not rounded: from 12:00:59 the next minute is 12:01")
    func secondsWithinTheMinute() throws {
        let cron = try CronExpression("* * * * *")
        let start = Self.instant("2025-01-01T12:00:59Z").addingTimeInterval(0.9)
        #expect(cron.next(after: start, in: .gmt) == Self.instant("2025-01-01T12:01:00Z"))
    }

    @Test("An expression that matches no day within 50 years has no next fire", arguments: ["0 0 30 2 *", "0 0 31 4,6,9,11 *"])
    func never(_ expression: String) throws {
        #expect(try CronExpression(expression).next(after: Self.instant("2025-01-01T00:00:00Z"), in: .gmt) == nil)
    }

    @Test("Either rule with one side impossible: day 31 of February or a Monday in February is every Monday in February")
    func eitherWithAnImpossibleSide() throws {
        #expect(try Self.fires("0 0 31 2 MON", "UTC", from: "2025-01-01T00:00:00+00:00", count: 2)
            == ["2025-02-03T00:00:00+00:00", "2025-02-10T00:00:00+00:00"])
    }
}
