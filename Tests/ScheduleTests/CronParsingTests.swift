@testable import ConveyorSchedule
import Testing

/// Cron expressions read field by field (docs/SCHEDULES.md, "Cron expressions"), and the
/// refusals, each naming the field and the bad value.
@Suite("Cron expression parsing")
struct CronParsingTests {
    /// A mask's values, as a comma list ("0,15,30,45").
    static func values(_ mask: UInt64) -> String {
        (0..<64).filter { mask & (1 << UInt64($0)) != 0 }.map(String.init).joined(separator: ",")
    }

    static func fields(_ cron: CronExpression) -> [String] {
        [values(cron.minutes), values(cron.hours), values(cron.daysOfMonth), values(cron.months), values(cron.daysOfWeek)]
    }

    static let allMinutes = (0...59).map(String.init).joined(separator: ",")
    static let allHours = (0...23).map(String.init).joined(separator: ",")
    static let allDays = (1...31).map(String.init).joined(separator: ",")
    static let allMonths = (1...12).map(String.init).joined(separator: ",")
    static let allWeekdays = "0,1,2,3,4,5,6"

    @Test("Good expressions: stars, lists, ranges, steps, names in any case, day-of-week 7, macros", arguments: [
        ("* * * * *", [allMinutes, allHours, allDays, allMonths, allWeekdays]),
        ("0,15,30,45 9-17 1 JAN *", ["0,15,30,45", "9,10,11,12,13,14,15,16,17", "1", "1", allWeekdays]),
        ("*/15 */6 */10 */4 */2", ["0,15,30,45", "0,6,12,18", "1,11,21,31", "1,5,9", "0,2,4,6"]),
        ("10-30/10 1-10/3 5-20/5 feb-Dec/5 mon-fri", ["10,20,30", "1,4,7,10", "5,10,15,20", "2,7,12", "1,2,3,4,5"]),
        ("5 4 * jul,Aug,SEP Sun,sat", ["5", "4", allDays, "7,8,9", "0,6"]),
        ("0 0 * * 7", ["0", "0", allDays, allMonths, "0"]),
        ("0 0 * * 5-7", ["0", "0", allDays, allMonths, "0,5,6"]),
        ("0 0 * * 0-7", ["0", "0", allDays, allMonths, allWeekdays]),
        ("0 0 * * */7", ["0", "0", allDays, allMonths, "0"]),
        ("*/20,7 0 */15,2 6 3,*/3", ["0,7,20,40", "0", "1,2,16,31", "6", "0,3,6"]),
        ("1,2,3-5,40-59/7 0 1,31 6 3", ["1,2,3,4,5,40,47,54", "0", "1,31", "6", "3"]),
        ("  0   12\t* *  *  ", ["0", "12", allDays, allMonths, allWeekdays]),
        ("@yearly", ["0", "0", "1", "1", allWeekdays]),
        ("@ANNUALLY", ["0", "0", "1", "1", allWeekdays]),
        ("@monthly", ["0", "0", "1", allMonths, allWeekdays]),
        ("@weekly", ["0", "0", allDays, allMonths, "0"]),
        ("@Daily", ["0", "0", allDays, allMonths, allWeekdays]),
        ("@midnight", ["0", "0", allDays, allMonths, allWeekdays]),
        ("@hourly", ["0", allHours, allDays, allMonths, allWeekdays]),
    ])
    func parses(_ text: String, _ expected: [String]) throws {
        let cron = try CronExpression(text)
        #expect(Self.fields(cron) == expected, "\(text)")
    }

    @Test("Which day rule applies: either day field when both are restricted, as croniter decides it", arguments: [
        ("0 0 13 * FRI", true),
        ("0 0 * * FRI", false),
        ("0 0 13 * *", false),
        ("0 0 */2 * 1", true),
        ("0 0 1-31 * MON", true),
        ("0 0 */1 * MON", true),
        ("0 0 1-31 * */2", false),
        ("0 0 */2 * 0-6", false),
        ("0 0 */2 * 0-5", true),
        ("0 0 */2 * */1", false),
        ("@weekly", false),
    ])
    func dayRule(_ text: String, _ either: Bool) throws {
        #expect(try CronExpression(text).daysEither == either, "\(text)")
    }

    @Test("Bad expressions are refused with the field and the value", arguments: [
        ("", "empty cron expression"),
        ("   ", "empty cron expression"),
        ("* * * *", "a cron expression has 5 fields (MIN HOUR DOM MON DOW), '* * * *' has 4"),
        ("* * * * * *", "a cron expression has 5 fields (MIN HOUR DOM MON DOW), '* * * * * *' has 6"),
        ("@reboot", "unknown macro '@reboot': use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"),
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("0 25 * * *", "hour field: 25 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month field: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * 0 *", "month field: 0 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("0 0 * * 99999999999999999999", "day-of-week field: 99999999999999999999 is out of range 0-7"),
        ("0 0 * FOO *", "month field: 'FOO' is not a number or month name"),
        ("0 0 * * MONDAY", "day-of-week field: 'MONDAY' is not a number or day name"),
        ("0 0 * MON *", "month field: 'MON' is not a number or month name"),
        ("0 JAN * * *", "hour field: 'JAN' is not a number"),
        ("a * * * *", "minute field: 'a' is not a number"),
        ("-5 * * * *", "minute field: a range is missing a bound"),
        ("5- * * * *", "minute field: a range is missing a bound"),
        ("1-2-3 * * * *", "minute field: '1-2-3' is not a number, range or step"),
        ("0 22-2 * * *", "hour field: range 22-2 is reversed (22 > 2)"),
        ("0 0 * * FRI-SUN", "day-of-week field: range FRI-SUN is reversed (5 > 0)"),
        ("*/0 * * * *", "minute field: step 0 in '*/0' must be at least 1"),
        ("*/x * * * *", "minute field: step 'x' in '*/x' is not a number"),
        ("*/ * * * *", "minute field: step '' in '*/' is not a number"),
        ("*/-1 * * * *", "minute field: step '-1' in '*/-1' is not a number"),
        ("1/5 * * * *", "minute field: a step needs * or a range before it: '1/5' (write 1-59/5)"),
        ("1-10/2/3 * * * *", "minute field: '1-10/2/3' has more than one step"),
        ("1,,2 * * * *", "minute field: empty list entry in '1,,2'"),
        ("1, * * * *", "minute field: empty list entry in '1,'"),
        ("*,5 * * * *", "minute field: '*' cannot be combined with other entries in '*,5'"),
        ("0 0 L * *", "day-of-month field: 'L' is not a number"),
        ("0 0 * * 5#3", "day-of-week field: '5#3' is not a number or day name"),
        ("0 0 ? * *", "day-of-month field: '?' is not a number"),
        ("0 0 * * *5", "day-of-week field: '*5' is not a number or day name"),
    ])
    func refuses(_ text: String, _ message: String) {
        #expect(throws: CronExpressionError(message), "\(text)") { try CronExpression(text) }
    }

    @Test("The text is kept (trimmed) and is the description")
    func keepsText() throws {
        let cron = try CronExpression("  */5 * * * MON-FRI ")
        #expect(cron.text == "*/5 * * * MON-FRI")
        #expect("\(cron)" == "*/5 * * * MON-FRI")
    }
}
