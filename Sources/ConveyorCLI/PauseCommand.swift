import ArgumentParser
import ConveyorProducer
import ConveyorWorker

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop dispatching tasks of a name: they are still accepted and stay queued; tasks already running finish.",
        discussion: "The pause is durable (it survives a broker restart) and lasts until `conveyor resume NAME`. Other names are not affected. A name no task has had yet may be paused: its tasks will wait. `conveyor stats` lists the paused names.")

    @Argument(help: "The task name.") var name: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let outcome = try await withBrokerClient(endpoint, logging, label: "conveyor.pause") { try await $0.pause(name: name) }
        printLine(PauseMessages.paused(outcome))
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Dispatch tasks of a paused name again: its queued tasks go to consumers at once.")

    @Argument(help: "The task name.") var name: String
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let outcome = try await withBrokerClient(endpoint, logging, label: "conveyor.resume") { try await $0.resume(name: name) }
        printLine(PauseMessages.resumed(outcome))
    }
}

/// What `conveyor pause` and `conveyor resume` print.
enum PauseMessages {
    static func tasks(_ count: Int, _ adjective: String) -> String {
        "\(count) \(adjective) task\(count == 1 ? "" : "s")"
    }

    /// "1 queued task waits", "12 queued tasks wait".
    static func waiting(_ count: Int) -> String {
        tasks(count, "queued") + (count == 1 ? " waits" : " wait")
    }

    /// What the queued tasks of a name that is not paused wait for.
    static func waitingFor(_ outcome: PauseOutcome) -> String {
        waiting(outcome.queued) + (outcome.served ? " for a consumer with room" : " for a consumer serving it")
    }

    static func paused(_ outcome: PauseOutcome) -> String {
        let name = outcome.name
        var line = outcome.changed ? "paused '\(name)'" : "'\(name)' was already paused"
        line += ": " + waiting(outcome.queued)
        line += outcome.running > 0 ? "; \(tasks(outcome.running, "running")) (dispatched already) finish" : "; running ones finish"
        if outcome.queued == 0, outcome.running == 0, !outcome.served {
            line += "\nno task named '\(name)' is queued or running and no consumer serves it: tasks submitted under that name will wait"
        }
        return line + "\n`conveyor resume \(name)` dispatches them again"
    }

    static func resumed(_ outcome: PauseOutcome) -> String {
        let name = outcome.name
        guard outcome.changed else {
            return "'\(name)' was not paused" + (outcome.queued > 0 ? ": " + waitingFor(outcome) : "")
        }
        if !outcome.served {
            return "resumed '\(name)'" + (outcome.queued > 0 ? ": no consumer serves it yet; " + waitingFor(outcome) : "")
        }
        return "resumed '\(name)': its queued tasks are dispatched again" + (outcome.queued > 0 ? "; " + waitingFor(outcome) : "")
    }
}
