import ConveyorWorker
import ArgumentParser
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ConveyorProducer

/// Runs `body` with a producer connected to `--broker` (``withProducer(_:logger:_:)``: shut down
/// when `body` returns), and turns a producer error (no answer, protocol error) into
/// "error: ..." on stderr and exit status 1.
func withBrokerClient<T>(
    _ endpoint: BrokerEndpointOptions, _ logging: LoggingOptions, label: String,
    _ body: (Producer) async throws -> T
) async throws -> T {
    let logger = logging.bootstrap(label: label)
    let configuration = try endpoint.producerConfiguration()
    do {
        return try await withProducer(configuration, logger: logger, body)
    } catch let error as ProducerError {
        try ExitStatus.exitIfUnreachable(error.description)
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print where a task stands (queued, scheduled, reserved, running, done, unknown) and its result when done.",
        discussion: """
            One JSON line: {"id", "state", then "status" and "result" or "error" when done}. A scheduled task \
            (submitted with --delay or --at, waiting for its time) has "due_at": when it comes due, ISO 8601 \
            UTC with milliseconds, and "due_at_ms" (ms since the epoch). Exits 1 for an unknown id.
            """)

    @Argument(help: "The task id.") var id: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let report = try await withBrokerClient(endpoint, logging, label: "conveyor.status") { try await $0.status(id: id) }
        // Built by hand rather than encoded: the result is the task's own JSON, copied in untouched.
        var line = #"{"id":\#(JSONText.quoted(report.id)),"state":"\#(report.state.rawValue)""#
        if let due = report.dueAt {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            line += #","due_at":"\#(formatter.string(from: Date(timeIntervalSince1970: Double(due) / 1000)))","due_at_ms":\#(due)"#
        }
        if let result = report.result {
            line += #","status":"\#(result.status.rawValue)""#
            line += result.status == .ok ? #","result":\#(result.body.text)"# : #","error":\#(JSONText.quoted(result.errorMessage ?? result.body.text))"#
        }
        printLine(line + "}")
        if report.state == .unknown { throw ExitCode.failure }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a waiting task: queued, or reserved in a consumer's prefetch buffer. A task on a thread runs on; the answer says so.",
        discussion: "Prints cancelled, running, done or unknown; exits 0 only for cancelled.")

    @Argument(help: "The task id.") var id: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let outcome = try await withBrokerClient(endpoint, logging, label: "conveyor.cancel") { try await $0.cancel(id: id) }
        printLine(outcome.rawValue)
        if outcome != .cancelled { throw ExitCode.failure }
    }
}

struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Cancel every waiting task of a name (queued, or waiting to retry): for a backlog whose producer is gone.",
        discussion: "Each purged task ends as cancelled (its result says it was purged); running tasks run on. Prints how many were purged.")

    @Argument(help: "The task name.") var name: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let count = try await withBrokerClient(endpoint, logging, label: "conveyor.purge") { try await $0.purge(name: name) }
        printLine("purged \(count) waiting task\(count == 1 ? "" : "s") named '\(name)'")
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print the broker's statistics: queued per task name, consumers with pid, threads and free credit, tasks in flight, totals, dead letters.")

    @Flag(help: "Print the broker's JSON as it sent it.") var json = false
    @Option(name: [.customShort("w"), .long], help: "Print the statistics again every SECONDS until Ctrl-C (on a terminal, in place).")
    var watch: Double?
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let watch, watch < 0.1 { throw ValidationError("--watch must be at least 0.1 seconds") }
    }

    func run() async throws {
        if let watch {
            try await withBrokerClient(endpoint, logging, label: "conveyor.stats") { producer in
                let terminal = isatty(1) != 0
                while true {
                    let text = json ? try await producer.statsJSON().text : StatsFormatter.format(try await producer.stats())
                    // On a terminal: home, the statistics, clear what is left of the screen.
                    printLine(terminal ? "\u{1B}[H" + text + "\u{1B}[J" : text)
                    try await Task.sleep(for: .milliseconds(Int(watch * 1000)))
                }
            }
            return
        }
        if json {
            // The exact bytes, so that fields newer than this build are not lost.
            printLine(try await withBrokerClient(endpoint, logging, label: "conveyor.stats") { try await $0.statsJSON() }.text)
            return
        }
        let statistics = try await withBrokerClient(endpoint, logging, label: "conveyor.stats") { try await $0.stats() }
        printLine(StatsFormatter.format(statistics))
    }
}

/// `conveyor stats` for people.
enum StatsFormatter {
    static func format(_ stats: BrokerStatistics) -> String {
        var lines: [String] = []
        if let version = stats.protocolVersion { lines.append("protocol: \(version)") }
        let queued = stats.queued.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        lines.append("queued: \(stats.queuedTotal)" + (queued.isEmpty ? "" : "  (" + queued.joined(separator: ", ") + ")"))
        if let paused = stats.paused, !paused.isEmpty {
            lines.append("paused: " + paused.map { "\($0) (\(stats.queued[$0] ?? 0) queued)" }.joined(separator: ", ")
                         + "; not dispatched until `conveyor resume NAME`")
        }
        for figures in stats.limits ?? [] { lines.append("limit: " + LimitMessages.line(figures)) }
        if let schedules = stats.schedules, schedules > 0 { lines.append("schedules: \(schedules) (conveyor schedule list)") }
        if let delayed = stats.delayed, delayed > 0 { lines.append("waiting to retry: \(delayed)") }
        if let scheduled = stats.scheduled, scheduled > 0 { lines.append("scheduled (waiting for their time): \(scheduled)") }
        if let unique = stats.uniqueKeys, unique > 0 { lines.append("unique keys held: \(unique)") }
        let reserved = stats.reserved ?? 0
        lines.append("running: \(stats.running - reserved)" + (stats.reserved.map { "\nreserved: \($0) (in consumers' prefetch buffers, not started; cancel takes them back)" } ?? ""))
        if let ages = stats.oldestQueuedAge, let oldest = ages.max(by: { $0.value < $1.value }) {
            lines.append(String(format: "oldest queued: %.1f s (%@)", oldest.value, oldest.key))
        }
        if let uptime = stats.uptime {
            var line = String(format: "uptime: %.0f s", uptime)
            if let rate = stats.completedRate10s { line += String(format: "; finished %.1f tasks/s over 10 s", rate) }
            if let rate = stats.completedRate60s { line += String(format: ", %.1f over 60 s", rate) }
            lines.append(line)
        }
        lines.append("producers: \(stats.producers)" + (stats.security?.producerIdentities.map { identities in
            identities.isEmpty ? "" : "  (" + identities.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        } ?? ""))
        if let security = stats.security {
            var line = "clients: " + (security.authenticated ? "authenticated by the clients file" : "not authenticated (everyone may do everything)")
            if let open = security.connections, let limit = security.connectionLimit {
                line += "; connections \(open) of at most \(limit)"
            }
            if let refused = security.refusedAtCap, refused > 0 { line += ", \(refused) refused at the cap" }
            if let refused = security.refusedHandshakes, refused > 0 { line += ", \(refused) handshakes refused" }
            lines.append(line)
        }
        if let turn = stats.longestTurnMilliseconds, let ever = stats.longestTurnEverMilliseconds {
            lines.append(String(format: "longest loop turn: %.1f ms since the last stats, %.1f ms since the start", turn, ever))
        }
        lines.append("results kept: \(stats.resultsKept)")
        lines.append("consumers: \(stats.consumers.count)")
        for consumer in stats.consumers {
            lines.append("  pid \(consumer.pid) on \(consumer.host)" + (consumer.identity.map { " as \($0)" } ?? "") + ": threads \(consumer.threads), running \(min(consumer.inFlight, consumer.threads)), reserved \(max(0, consumer.inFlight - consumer.threads)), free credit \(consumer.freeCredit), completed \(consumer.completed)"
                + (consumer.leasesExpired.map { $0 > 0 ? ", leases expired \($0)" : "" } ?? "")
                + (consumer.quarantined == true ? ", QUARANTINED (its leases keep running out: no new tasks until it answers one)" : ""))
        }
        lines.append("totals: " + totals(stats.totals).map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        lines.append("dead letters: \(stats.deadLetterTotal)")
        for entry in stats.deadLetters.suffix(10) {
            lines.append("  \(entry.id) \(entry.name) after \(entry.attempts) attempts: \(entry.reason)")
        }
        lines.append(journal(stats.journal))
        return lines.joined(separator: "\n")
    }

    static func journal(_ journal: BrokerStatistics.Journal?) -> String {
        guard let journal else { return "journal: none (--in-memory: a restart loses everything)" }
        var line = "journal: \(journal.directory), fsync \(journal.fsync), \(megabytes(journal.sizeBytes)) on disk in \(journal.segments) segment\(journal.segments == 1 ? "" : "s"), \(journal.records) records written, \(String(format: "%.0f", journal.fsyncsPerSecond)) fsyncs/s, \(String(format: "%.1f", journal.recordsPerFsync)) records per fsync"
        if let at = journal.lastCompaction {
            let ago = max(0, Date().timeIntervalSince1970 - Double(at) / 1e9)
            line += ", last compaction \(String(format: "%.0f", ago)) s ago (snapshot \(megabytes(journal.snapshotBytes)))"
        } else {
            line += ", no compaction yet"
        }
        if let failure = journal.writeFailure { line += "\n  WRITE FAILING, new tasks refused: \(failure)" }
        return line
    }

    private static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

    struct Counter: Equatable {
        let name: String
        let count: Int
    }

    /// The totals under their wire names (docs/PROTOCOL.md §6.7), sorted by name.
    static func totals(_ totals: BrokerStatistics.Totals) -> [Counter] {
        [
            Counter(name: "bad_messages", count: totals.badMessages),
            Counter(name: "cancelled", count: totals.cancelled),
            Counter(name: "completed", count: totals.completed),
            Counter(name: "duplicates_dropped", count: totals.duplicatesDropped),
            Counter(name: "failed", count: totals.failed),
            Counter(name: "illegal_transitions", count: totals.illegalTransitions),
            Counter(name: "rejected", count: totals.rejected),
            Counter(name: "requeued", count: totals.requeued),
            Counter(name: "retried", count: totals.retried),
            Counter(name: "submitted", count: totals.submitted),
            Counter(name: "succeeded", count: totals.succeeded),
            Counter(name: "timed_out", count: totals.timedOut),
        ]
    }
}
