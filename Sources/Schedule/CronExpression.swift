/// A standard five-field cron expression, `MIN HOUR DOM MON DOW`, or one of the macros
/// `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`.
///
/// Each field takes `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and comma lists of
/// those (`1,15,30-40/5`). The month field also takes JAN–DEC and the day-of-week field SUN–SAT
/// (any case, also inside ranges: `MON-FRI`); day-of-week is 0–7, where both 0 and 7 are Sunday.
///
/// Days follow the classic (Vixie) cron rule, as croniter does: when both day-of-month and
/// day-of-week are restricted, a day matches if either matches (`0 0 13 * FRI` is every 13th
/// and every Friday). A day field that lists every value (`1-31`, `*/1`) counts as `*` only when
/// the other day field is written with a `*`, again as croniter does.
///
/// The fire times are found by ``next(after:in:)``; docs/SCHEDULES.md describes the rules.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written (trimmed).
    public let text: String
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Bit 0 is Sunday; 7 is folded into it.
    let daysOfWeek: UInt64
    /// The day-of-month field counts as `*` (croniter's rule above).
    let anyDayOfMonth: Bool
    let anyDayOfWeek: Bool

    public var description: String { text }

    /// Parses an expression; the error names the field and the bad value.
    public init(_ text: String) throws(CronExpressionError) {
        let trimmed = text.trimmingASCIIWhitespace()
        self.text = trimmed
        guard !trimmed.isEmpty else { throw CronExpressionError("empty cron expression") }
        var source = trimmed
        if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else {
                throw CronExpressionError("unknown macro '\(trimmed)': use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")
            }
            source = expansion
        }
        let parts = source.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 else {
            throw CronExpressionError("a cron expression has 5 fields (MIN HOUR DOM MON DOW), '\(trimmed)' has \(parts.count)")
        }
        minutes = try CronField.minute.parse(parts[0])
        hours = try CronField.hour.parse(parts[1])
        daysOfMonth = try CronField.dayOfMonth.parse(parts[2])
        months = try CronField.month.parse(parts[3])
        let weekdays = try CronField.dayOfWeek.parse(parts[4])
        daysOfWeek = (weekdays & 0x7F) | (weekdays >> 7 & 1)
        anyDayOfMonth = parts[2] == "*" || (daysOfMonth == CronField.dayOfMonth.all && parts[4].contains("*"))
        anyDayOfWeek = parts[4] == "*" || (daysOfWeek == 0x7F && parts[2].contains("*"))
    }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Every hour of the day is listed: then a fire time in a spring-forward gap is skipped
    /// rather than moved (see ``next(after:in:)``).
    var everyHour: Bool { hours == CronField.hour.all }
    /// Both day fields are restricted: a day matches if either matches.
    var daysEither: Bool { !anyDayOfMonth && !anyDayOfWeek }
}

/// Why a cron expression was refused: the field and the value, as in
/// "hour field: 25 is out of range 0-23".
public struct CronExpressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One field's bounds and names.
struct CronField: Sendable {
    let name: String
    let low: Int
    let high: Int
    /// What `*` stands for (day-of-week: 0-6, without the second Sunday).
    let starHigh: Int
    let names: [String: Int]
    let nameKind: String?

    static let minute = CronField(name: "minute", low: 0, high: 59, starHigh: 59, names: [:], nameKind: nil)
    static let hour = CronField(name: "hour", low: 0, high: 23, starHigh: 23, names: [:], nameKind: nil)
    static let dayOfMonth = CronField(name: "day-of-month", low: 1, high: 31, starHigh: 31, names: [:], nameKind: nil)
    static let month = CronField(name: "month", low: 1, high: 12, starHigh: 12, names: [
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
        "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    ], nameKind: "month name")
    static let dayOfWeek = CronField(name: "day-of-week", low: 0, high: 7, starHigh: 6, names: [
        "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
    ], nameKind: "day name")

    /// The mask of every value `*` stands for.
    var all: UInt64 { Self.mask(low, starHigh, step: 1) }

    static func mask(_ from: Int, _ to: Int, step: Int) -> UInt64 {
        var bits: UInt64 = 0
        var value = from
        while value <= to {
            bits |= 1 << UInt64(value)
            let (next, overflow) = value.addingReportingOverflow(step)
            if overflow { break }
            value = next
        }
        return bits
    }

    func error(_ text: String) -> CronExpressionError { CronExpressionError("\(name) field: \(text)") }

    /// The set of values of the field's text, as a bit mask.
    func parse(_ text: String) throws(CronExpressionError) -> UInt64 {
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var bits: UInt64 = 0
        for entry in entries {
            guard !entry.isEmpty else { throw error("empty list entry in '\(text)'") }
            if entry == "*", entries.count > 1 {
                throw error("'\(entry)' cannot be combined with other entries in '\(text)'")
            }
            bits |= try parseEntry(entry)
        }
        return bits
    }

    private func parseEntry(_ entry: String) throws(CronExpressionError) -> UInt64 {
        var rangeText = entry
        var step = 1
        let slashParts = entry.split(separator: "/", omittingEmptySubsequences: false)
        if slashParts.count > 2 { throw error("'\(entry)' has more than one step") }
        if slashParts.count == 2 {
            rangeText = String(slashParts[0])
            let stepText = String(slashParts[1])
            guard !stepText.isEmpty, stepText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw error("step '\(stepText)' in '\(entry)' is not a number")
            }
            guard let value = Int(stepText) else { throw error("step \(stepText) in '\(entry)' is too large") }
            guard value >= 1 else { throw error("step 0 in '\(entry)' must be at least 1") }
            step = value
        }
        if rangeText == "*" { return Self.mask(low, starHigh, step: step) }
        let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        switch bounds.count {
        case 1:
            guard slashParts.count == 1 else {
                throw error("a step needs * or a range before it: '\(entry)' (write \(rangeText)-\(high)/\(step))")
            }
            let value = try parseValue(rangeText)
            return Self.mask(value, value, step: 1)
        case 2:
            let from = try parseValue(bounds[0]), to = try parseValue(bounds[1])
            guard from <= to else { throw error("range \(rangeText) is reversed (\(from) > \(to))") }
            return Self.mask(from, to, step: step)
        default:
            throw error("'\(entry)' is not a number, range or step")
        }
    }

    private func parseValue(_ text: String) throws(CronExpressionError) -> Int {
        if text.isEmpty { throw error("a range is missing a bound") }
        if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let value = Int(text), value >= low, value <= high else {
                throw error("\(text) is out of range \(low)-\(high)")
            }
            return value
        }
        if let value = names[text.lowercased()] { return value }
        throw error("'\(text)' is not a number\(nameKind.map { " or \($0)" } ?? "")")
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
