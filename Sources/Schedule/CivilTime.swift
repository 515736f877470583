import Foundation

/// Wall-clock ("naive") time as seconds since 1970-01-01 00:00 on the same wall clock, and the
/// proleptic Gregorian calendar arithmetic on it. Schedules are matched on wall-clock time and
/// only then placed on the time line (``ZoneClock``), so that no Calendar is involved.
enum Civil {
    static let secondsPerDay: Int64 = 86_400

    /// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day number (`civil_from_days`).
    static func date(days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// 0 for Sunday … 6 for Saturday (1970-01-01 was a Thursday).
    static func weekday(days: Int64) -> Int {
        let w = (days + 4) % 7
        return Int(w >= 0 ? w : w + 7)
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Floor division, for wall-clock seconds before 1970.
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

/// A time zone's UTC offsets, and the instants a wall-clock time stands for there: none in a
/// spring-forward gap, two in a fall-back overlap, one otherwise.
struct ZoneClock {
    let zone: TimeZone

    /// The zone's offset from UTC at an instant (Unix seconds), in seconds.
    func offset(at instant: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }

    /// The wall-clock time (in ``Civil`` seconds) of an instant.
    func wall(at instant: Int64) -> Int64 { instant + offset(at: instant) }

    /// Every instant whose wall-clock time is `wall`, earliest first: empty in a gap, two in an
    /// overlap. The offsets tried are those in force a day either side, which covers every zone
    /// whose offset does not change twice within two days.
    func instants(atWall wall: Int64) -> [Int64] {
        let before = offset(at: wall - Civil.secondsPerDay)
        let after = offset(at: wall + Civil.secondsPerDay)
        var found: [Int64] = []
        for candidate in [before, after, offset(at: wall - before), offset(at: wall - after)] {
            let instant = wall - candidate
            if offset(at: instant) == candidate, !found.contains(instant) { found.append(instant) }
        }
        return found.sorted()
    }
}
