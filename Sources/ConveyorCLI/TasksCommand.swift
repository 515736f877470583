import ConveyorWorker
import ArgumentParser
import ConveyorProducer
import ConveyorProtocol
import Foundation

/// `conveyor tasks`: the broker's tasks by state, a page of the broker's at a time.
struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List the broker's tasks: queued, scheduled, reserved, running, finished (results kept) and dead letters.",
        discussion: """
            Unfinished tasks first, oldest accepted first, then finished ones in the order they ended, then \
            dead letters. A table, or with --json one JSON object per line: {"id", "name", "state", "attempts", \
            "accepted_at", "updated_at" (ms since the epoch; updated_at when it ended), "due_at" (scheduled: when \
            it comes due; for a task given --delay or --at, accepted_at is when it becomes ready), "producer", "consumer" \
            (HOST:PID, running and reserved), "status", "error", "kind" (finished)}. The command asks the broker \
            page by page (TASKS, docs/PROTOCOL.md §4.8.3) until --limit tasks are found or none are left; each \
            page costs the broker a bounded amount of work however many tasks it holds. Where clients are \
            authenticated, a producer key without the admin role lists only its own tasks.
            """)

    @Option(help: ArgumentHelp("Only tasks in this state: \(TasksCommand.stateWords).", valueName: "state"))
    var state: String?
    @Option(help: "Only tasks with this name.") var name: String?
    @Option(help: ArgumentHelp("Only tasks that changed within this long: 30s, 15m, 1h, 2d (a finished task or dead letter by when it ended, any other by when it was accepted).", valueName: "age"))
    var since: String?
    @Option(name: [.customShort("n"), .long], help: "At most this many tasks.") var limit = 100
    @Option(help: ArgumentHelp("Tasks asked of the broker per request, 1 to \(TaskQuery.maxLimit).", valueName: "n"))
    var pageSize = TaskQuery.maxLimit
    @Flag(help: "One JSON object per line.") var json = false
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    static var stateWords: String { TaskListState.all.map(\.rawValue).joined(separator: ", ") }

    func validate() throws {
        if let state, !TaskListState.all.contains(TaskListState(rawValue: state)) {
            throw ValidationError("unknown --state '\(state)': use one of \(Self.stateWords)")
        }
        if let since, Self.milliseconds(since) == nil {
            throw ValidationError("--since takes a number and a unit, s, m, h or d (30s, 15m, 1h, 2d); not '\(since)'")
        }
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        guard (1...TaskQuery.maxLimit).contains(pageSize) else {
            throw ValidationError("--page-size must be from 1 to \(TaskQuery.maxLimit) (the broker's largest page)")
        }
    }

    /// `30s`, `15m`, `1h`, `2d` (a decimal number is allowed: `1.5h`) as milliseconds.
    static func milliseconds(_ text: String) -> Int64? {
        guard let unit = text.last, let scale: Double = ["s": 1e3, "m": 6e4, "h": 3.6e6, "d": 8.64e7][unit],
              let amount = Double(text.dropLast()), amount >= 0, amount.isFinite, amount * scale < 1e15 else { return nil }
        return Int64(amount * scale)
    }

    func run() async throws {
        var query = TaskQuery(state: state.map(TaskListState.init(rawValue:)), name: name)
        if let since, let age = Self.milliseconds(since) {
            query.sinceMilliseconds = max(0, Int64(Date().timeIntervalSince1970 * 1000) - age)
        }
        let (tasks, more) = try await withBrokerClient(endpoint, logging, label: "conveyor.tasks") { producer in
            var found: [TaskSummary] = []
            while true {
                query.limit = min(pageSize, limit - found.count)
                let page = try await producer.tasks(query)
                found += page.tasks.prefix(limit - found.count)
                guard let next = page.nextCursor else { return (found, false) }
                if found.count >= limit { return (found, true) }
                // A cursor that does not move would be asked for forever: a broker bug, said as such.
                guard next != query.cursor || page.examined > 0 else {
                    throw ProducerError.unexpectedReply("the broker's listing does not move on from cursor \(next)")
                }
                query.cursor = next
            }
        }
        if json {
            for task in tasks { printLine(task.json) }
            return
        }
        guard !tasks.isEmpty else {
            printLine("no tasks" + (state.map { " \($0)" } ?? "") + (name.map { " named '\($0)'" } ?? "") + (since.map { " within \($0)" } ?? ""))
            return
        }
        printLine(TasksFormatter.format(tasks, now: Date()))
        if more { printLine("… more tasks match; a larger --limit (now \(limit)) shows them") }
    }
}

/// `conveyor tasks` for people: aligned columns, times as ages.
enum TasksFormatter {
    static func format(_ tasks: [TaskSummary], now: Date) -> String {
        let nowMilliseconds = Int64(now.timeIntervalSince1970 * 1000)
        let header = ["ID", "NAME", "STATE", "ATTEMPTS", "ACCEPTED", "ENDED", "WHERE", "ERROR"]
        let rows = tasks.map { task -> [String] in
            let accepted: String = task.acceptedAt.map { when($0, now: nowMilliseconds) } ?? "-"
            let due: String? = task.dueAt.map { "due " + when($0, now: nowMilliseconds) }
            return [task.id, task.name, task.state.rawValue, String(task.attempts), accepted,
             task.updatedAt.map { age(nowMilliseconds - $0) } ?? "-",
             task.consumer ?? due ?? "-",
             task.error.map { (task.status.map { "\($0): " } ?? "") + $0 } ?? ""]
        }
        // Every column as wide as its widest cell; the last one (the error) as it is.
        let widths = (0..<header.count - 1).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            (row.indices.dropLast().map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) } + [row.last!])
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// `42s ago` for a time past, `in 42s` for one ahead (a scheduled task's).
    static func when(_ milliseconds: Int64, now: Int64) -> String {
        guard milliseconds > now else { return age(now - milliseconds) }
        let text = age(milliseconds - now)
        return "in " + (text.hasSuffix(" ago") ? String(text.dropLast(4)) : text)
    }

    /// `42s ago`, `3m ago`, `5h ago`, `2d ago`.
    static func age(_ milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        switch seconds {
        case ..<120: return "\(seconds)s ago"
        case ..<7200: return "\(seconds / 60)m ago"
        case ..<172_800: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }
}
