import ConveyorWorker
import ArgumentParser
import ConveyorProducer
import ConveyorProtocol
import Foundation

/// `conveyor failures`: the broker's recent failures, newest first.
struct FailuresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failures",
        abstract: "List the tasks that ended without succeeding (error, timeout), newest first: the broker keeps the last 1,000.",
        discussion: """
            Every failure is listed here, dead letter or not (with --attempts 1 a failed task makes no dead \
            letter). Each line: when it ended, id, name, status, attempts, args size, error. With --json, one \
            JSON object per line: {"at" (seconds since the epoch), "id", "name", "status", "attempts", \
            "args_bytes", "error", "kind"}. `conveyor status ID` gives a failure's whole result while it is kept.
            """)

    @Option(help: "Only the failures of tasks with this name.") var name: String?
    @Option(name: [.customShort("n"), .long], help: "At most this many (the newest).") var limit = 50
    @Flag(help: "One JSON object per line.") var json = false
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let failures = try await withBrokerClient(endpoint, logging, label: "conveyor.failures") {
            try await $0.recentFailures(named: name)
        }
        let shown = failures.prefix(max(0, limit))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for failure in shown { printLine(String(decoding: try encoder.encode(failure), as: UTF8.self)) }
            return
        }
        guard !shown.isEmpty else {
            printLine(name.map { "no recent failures of '\($0)'" } ?? "no recent failures")
            return
        }
        let formatter = ISO8601DateFormatter()
        for failure in shown {
            let when = formatter.string(from: Date(timeIntervalSince1970: failure.at))
            let attempts = failure.attempts.map { "\($0) attempt\($0 == 1 ? "" : "s")" } ?? "attempts unknown"
            let size = failure.argsBytes.map { "args \($0) B" } ?? "args gone (restored)"
            printLine("\(when)  \(failure.id)  \(failure.name)  \(failure.status)  \(attempts)  \(size)  \(failure.error)")
        }
        if failures.count > shown.count { printLine("… \(failures.count - shown.count) older; --limit \(failures.count) shows all") }
    }
}
