import ArgumentParser
import ConveyorProducer
import ConveyorWorker
import ConveyorProtocol

struct LimitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limit",
        abstract: "Set, show or clear the global limits of a task name: rate, concurrency, weight.",
        discussion: """
            The broker enforces them across every consumer process and host. --rate N/s: at most N dispatches a second on average (a token bucket of --burst tokens, by default one second's worth). --concurrency N: at most N tasks of the name dispatched and not finished at once (a task reserved in a consumer's prefetch buffer counts). --weight W: the name's share of dispatches against other names waiting at the same priority (weight 2 gets twice weight 1's). The options given replace those set before; the others stay. A limited name never holds up other names. Durable; `conveyor stats` lists the limits. Without options: shows the name's limits.
            """)

    @Argument(help: "The task name.") var name: String
    @Option(help: "Dispatches per second at most: 50, 50/s, 3000/min or 10/h.") var rate: String?
    @Option(help: "Tokens the bucket holds: dispatches at once after a quiet spell (needs --rate).") var burst: Int?
    @Option(help: "Tasks of the name dispatched at once at most, across every consumer.") var concurrency: Int?
    @Option(help: "The name's weight in the fair dispatch between names (1-1000; 1 by default).") var weight: Int?
    @Flag(help: "Remove every limit of the name.") var clear = false
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    var limit: NameLimit {
        get throws {
            NameLimit(rate: try rate.map(Self.parseRate), burst: burst, concurrency: concurrency, weight: weight)
        }
    }

    func validate() throws {
        let limit = try limit
        if clear, limit != NameLimit() { throw ValidationError("--clear takes no other limit: clear first, then set") }
        if let problem = (limit.burst != nil && limit.rate == nil ? "--burst needs --rate" : limit.problem) {
            throw ValidationError(problem)
        }
    }

    /// `50`, `50/s`, `3000/min`, `10/h` → per second.
    static func parseRate(_ text: String) throws -> Double {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        let per: Double = switch parts.count == 2 ? parts[1] : "s" {
        case "s", "sec", "second": 1
        case "m", "min", "minute": 60
        case "h", "hour": 3600
        default: throw ValidationError("--rate '\(text)': the unit after / must be s, min or h (50/s, 3000/min)")
        }
        guard let count = Double(parts[0]), count.isFinite, count > 0 else {
            throw ValidationError("--rate '\(text)' is not a positive number per time (50/s, 3000/min)")
        }
        return count / per
    }

    func run() async throws {
        let limit = try self.limit
        let outcome = try await withBrokerClient(endpoint, logging, label: "conveyor.limit") { producer in
            if clear { return try await producer.clearLimit(name: name) }
            return try await producer.setLimit(name: name, limit)
        }
        printLine(LimitMessages.outcome(outcome, asked: clear || limit != NameLimit()))
    }
}

/// What `conveyor limit` and `conveyor stats` print about limits.
enum LimitMessages {
    /// `resize: rate=50/s burst=10 concurrency=2; running 2, tokens 0, held by concurrency`
    static func line(_ figures: LimitFigures) -> String {
        var line = "\(figures.name): \(figures.limit.summary); running \(figures.running)"
        if let tokens = figures.tokens { line += ", tokens \(tokens)" }
        if let held = figures.heldBy { line += ", waiting on its \(held) limit" }
        if figures.throttled > 0 { line += ", held back \(figures.throttled) time\(figures.throttled == 1 ? "" : "s")" }
        return line
    }

    static func outcome(_ outcome: LimitOutcome, asked: Bool) -> String {
        guard let figures = outcome.figures else {
            return asked && outcome.changed ? "cleared the limits of '\(outcome.name)'" : "'\(outcome.name)' has no limits"
        }
        let verb = !asked ? "" : outcome.changed ? "set: " : "unchanged: "
        var text = verb + line(figures)
        if outcome.queued > 0 { text += "\n\(outcome.queued) task\(outcome.queued == 1 ? "" : "s") of it queued" }
        if !outcome.served { text += "\nno consumer serves '\(outcome.name)' now" }
        return text + "\n`conveyor limit \(outcome.name) --clear` removes them"
    }
}
