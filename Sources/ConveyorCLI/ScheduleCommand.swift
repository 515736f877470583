import ArgumentParser
import ConveyorProducer
import ConveyorWorker
import ConveyorProtocol
import Foundation

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Periodic tasks kept and fired by the broker: add, list, remove.",
        discussion: "No separate beat process: the broker fires each tick once, with the task id sched:ID:UNIX_SECONDS, so a restart or a retried request never fires a tick twice. Schedules are durable. docs/SCHEDULES.md has the rules.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a schedule (or replace the one with that id).",
            discussion: """
                Examples:
                  conveyor schedule add heartbeat echo '{"ping":true}' --every 60
                  conveyor schedule add nightly-report report '{}' --cron "0 3 * * *" --timezone Europe/Berlin
                The first tick is the first one after now. --missed says what happens to ticks the broker missed while it was down: latest (the default) fires the latest one once, all fires each of them (at most 100), none fires only ticks on time.
                """)

        @Argument(help: "The schedule's id (visible ASCII, at most \(255 - 19) characters).") var id: String
        @Argument(help: "The task name each tick enqueues.") var name: String
        @Argument(help: "The task's args, JSON.") var args: String = "{}"
        @Option(help: "Tick every SECONDS, at the multiples of the period since the Unix epoch (--every 3600 ticks on the hour).") var every: Int64?
        @Option(help: "Tick on a cron expression: \"MIN HOUR DOM MON DOW\", or @hourly, @daily, @weekly, @monthly, @yearly.") var cron: String?
        @Option(help: "The IANA time zone of --cron (Europe/Berlin); UTC by default.") var timezone: String?
        @Option(help: "Ticks missed while the broker was down: latest, all or none.") var missed: String = "latest"
        @Option(help: "Priority of each tick's task (higher first).") var priority: Int32 = 0
        @Option(help: "Timeout of each tick's task, in seconds.") var timeout: Double?
        @Option(help: "Attempts of each tick's task in all (1: no retry).") var maxAttempts: UInt32 = 1
        @OptionGroup var endpoint: BrokerEndpointOptions
        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard (every == nil) != (cron == nil) else { throw ValidationError("give exactly one of --every SECONDS and --cron \"MIN HOUR DOM MON DOW\"") }
            if timezone != nil, cron == nil { throw ValidationError("--timezone goes with --cron") }
            if let every, every < 1 { throw ValidationError("--every must be at least 1 second") }
            guard ["latest", "all", "none"].contains(missed) else { throw ValidationError("--missed must be latest, all or none") }
            if let timeout, !(timeout > 0 && timeout <= 4_000_000) { throw ValidationError("--timeout must be 0-4000000 seconds") }
            do { try JSONValidator.validate(Array(args.utf8)) } catch {
                throw ValidationError("args are not valid JSON (\(error)): quote them for the shell, as in '{\"n\":1}'")
            }
        }

        func run() async throws {
            let spec = ScheduleSpec(id: id, name: name, every: every, cron: cron, timezone: timezone, missed: missed,
                                    priority: priority == 0 ? nil : priority,
                                    timeoutMilliseconds: timeout.map { UInt32(($0 * 1000).rounded()) },
                                    maxAttempts: maxAttempts == 1 ? nil : maxAttempts)
            let info = try await withBrokerClient(endpoint, logging, label: "conveyor.schedule") {
                try await $0.addSchedule(spec, args: RawJSON(args))
            }
            printLine("added schedule '\(info.spec.id)': \(ScheduleMessages.line(info))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the broker's schedules with their last and next ticks.")
        @Flag(help: "One JSON object per schedule (NDJSON).") var json = false
        @OptionGroup var endpoint: BrokerEndpointOptions
        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            let infos = try await withBrokerClient(endpoint, logging, label: "conveyor.schedule") { try await $0.schedules() }
            if json {
                for info in infos { printLine(ScheduleMessages.json(info)) }
            } else if infos.isEmpty {
                printLine("no schedules (conveyor schedule add ID NAME ARGS --every SECONDS)")
            } else {
                for info in infos { printLine("\(info.spec.id): \(ScheduleMessages.line(info))") }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule; tasks it enqueued already are left alone.")
        @Argument(help: "The schedule's id.") var id: String
        @OptionGroup var endpoint: BrokerEndpointOptions
        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            let info = try await withBrokerClient(endpoint, logging, label: "conveyor.schedule") { try await $0.removeSchedule(id: id) }
            printLine("removed schedule '\(info.spec.id)' (\(info.spec.fired ?? 0) ticks fired)")
        }
    }
}

/// What `conveyor schedule` prints.
enum ScheduleMessages {
    static func time(_ seconds: Int64?) -> String {
        guard let seconds else { return "never" }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// `echo {"ping":true} every 60 s; next 2026-12-02T19:00:00Z; 12 fired`
    static func line(_ info: ScheduleInfo) -> String {
        let spec = info.spec
        var line = "\(spec.name) \(info.args.text) \(spec.when); next \(time(spec.nextTick))"
        line += "; \(spec.fired ?? 0) fired"
        if let skipped = spec.skipped, skipped > 0 { line += ", \(skipped) skipped" }
        if let missed = spec.missed, missed != "latest" { line += "; missed ticks: \(missed)" }
        return line
    }

    static func json(_ info: ScheduleInfo) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = String(decoding: (try? encoder.encode(info.spec)) ?? Data("{}".utf8), as: UTF8.self)
        text.removeLast()
        return text + #","args":"# + info.args.text + "}"
    }
}
