public import Foundation

extension CronExpression {
    /// The first fire time strictly after `date`, in `zone`; nil when the expression matches no
    /// day within 50 years (`0 0 30 2 *`).
    ///
    /// Fire times are wall-clock times in the zone, matched to the minute, and then placed on the
    /// time line by the rules croniter (with zoneinfo) follows, so that both agree on every fire:
    ///
    /// - **Spring forward (a gap).** A matching wall-clock time that does not exist is moved to
    ///   the first minute after the gap (`30 2 * * *` in New York fires at 03:00 EDT on the day
    ///   the clocks go from 02:00 to 03:00), unless the hour field lists every hour: then the
    ///   times in the gap are skipped (`30 * * * *` fires at 01:30 EST and then 03:30 EDT).
    /// - **Fall back (an overlap).** A wall-clock time that occurs twice fires at both instants,
    ///   first the earlier one (`30 1 * * *` in New York fires at 01:30 EDT and again an hour
    ///   later at 01:30 EST; `*/20 * * * *` fires six times between 01:00 EDT and 02:00 EST).
    ///
    /// When both day fields are restricted the two are matched apart (day-of-month alone, and
    /// day-of-week alone) and the earlier wall-clock time of the two wins, as croniter does.
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        let now = Int64(date.timeIntervalSince1970.rounded(.down))
        let clock = ZoneClock(zone: zone)
        let fire: Fire?
        if daysEither {
            let byMonthDay = next(after: now, clock: clock, days: .monthDays)
            let byWeekday = next(after: now, clock: clock, days: .weekDays)
            switch (byMonthDay, byWeekday) {
            case let (a?, b?): fire = a.wall < b.wall ? a : b
            case let (a, b): fire = a ?? b
            }
        } else {
            fire = next(after: now, clock: clock, days: .both)
        }
        return fire.map { Date(timeIntervalSince1970: TimeInterval($0.instant)) }
    }

    /// Which day fields a search matches.
    enum DayRule { case both, monthDays, weekDays }

    /// A fire time: the instant, and the wall-clock time it was placed from.
    struct Fire {
        let instant: Int64
        let wall: Int64
    }

    /// One search, with croniter's handling of a change of UTC offset between `now` and the
    /// time found: the time found from `now`'s wall clock moved by the change is taken instead
    /// when it is earlier and still after `now`.
    func next(after now: Int64, clock: ZoneClock, days: DayRule) -> Fire? {
        let nowWall = clock.wall(at: now)
        guard var wall = firstMatch(atOrAfter: Civil.floorDiv(nowWall, 60) * 60 + 60, days: days) else { return nil }
        var (fire, exists) = place(wall, after: now, clock: clock)
        if !exists, fire.instant <= now || everyHour {
            while !exists {
                guard let later = firstMatch(atOrAfter: wall + 60, days: days) else { return nil }
                wall = later
                (fire, exists) = place(wall, after: now, clock: clock)
            }
        }
        let change = (fire.wall - fire.instant) - (nowWall - now)
        if change == 0 { return fire }
        guard let otherWall = firstMatch(atOrAfter: Civil.floorDiv(nowWall + change, 60) * 60 + 60, days: days) else { return fire }
        let (other, otherExists) = place(otherWall, after: now, clock: clock)
        if !otherExists || other.instant <= now { return fire }
        return fire.instant > other.instant ? other : fire
    }

    /// A wall-clock time placed on the time line: in a gap, the first minute after it (and
    /// `exists` false); in an overlap, the earlier instant unless that is not after `now`.
    func place(_ wall: Int64, after now: Int64, clock: ZoneClock) -> (Fire, exists: Bool) {
        var instants = clock.instants(atWall: wall)
        if instants.isEmpty {
            var shifted = wall
            // No zone's gap is longer than a day; the bound only keeps a broken zone from looping.
            while instants.isEmpty, shifted - wall < Civil.secondsPerDay {
                shifted += 60
                instants = clock.instants(atWall: shifted)
            }
            return (Fire(instant: instants.first ?? wall, wall: shifted), false)
        }
        if instants.count > 1, instants[0] <= now, let later = instants.last {
            return (Fire(instant: later, wall: wall), true)
        }
        return (Fire(instant: instants[0], wall: wall), true)
    }

    /// The first wall-clock minute at or after `wall` (a whole minute) that the fields match,
    /// searching at most 50 years ahead.
    func firstMatch(atOrAfter wall: Int64, days rule: DayRule) -> Int64? {
        var day = Civil.floorDiv(wall, Civil.secondsPerDay)
        var minuteOfDay = Int((wall - day * Civil.secondsPerDay) / 60)
        let lastYear = Civil.date(days: day).year + 50
        while true {
            let (year, month, dayOfMonth) = Civil.date(days: day)
            if year > lastYear { return nil }
            if months & (1 << UInt64(month)) == 0 {
                day = month == 12 ? Civil.days(year: year + 1, month: 1, day: 1) : Civil.days(year: year, month: month + 1, day: 1)
                minuteOfDay = 0
                continue
            }
            if matches(dayOfMonth: dayOfMonth, weekday: Civil.weekday(days: day), rule), let time = firstTime(atOrAfter: minuteOfDay) {
                return day * Civil.secondsPerDay + Int64(time) * 60
            }
            day += 1
            minuteOfDay = 0
        }
    }

    private func matches(dayOfMonth: Int, weekday: Int, _ rule: DayRule) -> Bool {
        let byMonthDay = daysOfMonth & (1 << UInt64(dayOfMonth)) != 0
        let byWeekday = daysOfWeek & (1 << UInt64(weekday)) != 0
        switch rule {
        case .both: return byMonthDay && byWeekday
        case .monthDays: return byMonthDay
        case .weekDays: return byWeekday
        }
    }

    /// The first minute of the day (0-1439) at or after `minuteOfDay` that the hour and minute
    /// fields match.
    private func firstTime(atOrAfter minuteOfDay: Int) -> Int? {
        let hour = minuteOfDay / 60, minute = minuteOfDay % 60
        if hours & (1 << UInt64(hour)) != 0 {
            let later = minutes & ~((1 << UInt64(minute)) - 1)
            if later != 0 { return hour * 60 + later.trailingZeroBitCount }
        }
        let laterHours = hour >= 23 ? 0 : hours & ~((1 << UInt64(hour + 1)) - 1)
        guard laterHours != 0, minutes != 0 else { return nil }
        return laterHours.trailingZeroBitCount * 60 + minutes.trailingZeroBitCount
    }
}
