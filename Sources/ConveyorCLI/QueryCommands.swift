import ArgumentParser
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ConveyorProducer

/// Runs `body` with a producer connected to `--broker`, closes it afterwards, and turns a
/// producer error (no answer, protocol error) into "error: ..." on stderr and exit status 1.
func withBrokerClient<T>(
    _ endpoint: BrokerEndpointOptions, _ logging: LoggingOptions, label: String,
    _ body: (Producer) async throws -> T
) async throws -> T {
    let logger = logging.bootstrap(label: label)
    let configuration = try endpoint.producerConfiguration()
    let producer = try Producer(configuration: configuration, logger: logger)
    defer { producer.close() }
    do {
        return try await body(producer)
    } catch let error as ProducerError {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print where a task stands (queued, running, done, unknown) and its result when done.")

    @Argument(help: "The task id.") var id: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let report = try await withBrokerClient(endpoint, logging, label: "conveyor.status") { try await $0.status(id: id) }
        var line = #"{"id":\#(JSONText.quoted(report.id)),"state":"\#(report.state.rawValue)""#
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
        abstract: "Cancel a queued task. A running task cannot be cancelled; the answer says so.",
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

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print the broker's statistics: queued per task name, consumers with pid, threads and free credit, tasks in flight, totals, dead letters.")

    @Flag(help: "Print the raw JSON.") var json = false
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let raw = try await withBrokerClient(endpoint, logging, label: "conveyor.stats") { try await $0.stats() }
        if json {
            printLine(raw.text)
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(raw.bytes)) as? [String: Any] else {
            printLine(raw.text)
            return
        }
        printLine(StatsFormatter.format(object))
    }
}

enum StatsFormatter {
    static func format(_ stats: [String: Any]) -> String {
        var lines: [String] = []
        let queued = stats["queued"] as? [String: Int] ?? [:]
        lines.append("queued: \(stats["queued_total"] ?? 0)" + (queued.isEmpty ? "" : "  (" + queued.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"))
        lines.append("running: \(stats["running"] ?? 0)")
        lines.append("producers: \(stats["producers"] ?? 0)")
        let consumers = stats["consumers"] as? [[String: Any]] ?? []
        lines.append("consumers: \(consumers.count)")
        for consumer in consumers {
            lines.append("  pid \(consumer["pid"] ?? "?") on \(consumer["host"] ?? "?"): threads \(consumer["threads"] ?? 0), in flight \(consumer["in_flight"] ?? 0), free credit \(consumer["free_credit"] ?? 0), completed \(consumer["completed"] ?? 0)")
        }
        if let totals = stats["totals"] as? [String: Any] {
            lines.append("totals: " + totals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        let dead = stats["dead_letters"] as? [[String: Any]] ?? []
        lines.append("dead letters: \(stats["dead_letter_total"] ?? 0)")
        for entry in dead.suffix(10) {
            lines.append("  \(entry["id"] ?? "?") \(entry["name"] ?? "?") after \(entry["attempts"] ?? "?") attempts: \(entry["reason"] ?? "")")
        }
        return lines.joined(separator: "\n")
    }
}
