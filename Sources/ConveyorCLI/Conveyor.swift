import ConveyorSystem
import ArgumentParser
import ConveyorProtocol

/// `conveyor`: one program, a subcommand per job. The root only dispatches.
@main
struct Conveyor: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "A distributed task queue on ZeroMQ: producers, a broker, and consumer processes × threads.",
        version: "\(version) (protocol \(ProtocolTag.currentText); serves \(ProtocolTag.supportedText.joined(separator: ", ")))",
        subcommands: [
            BrokerCommand.self, ConsumerCommand.self, SubmitCommand.self, StatusCommand.self,
            CancelCommand.self, PurgeCommand.self, StatsCommand.self, DeadLettersCommand.self, FailuresCommand.self, JournalCommand.self, DemoCommand.self, BenchCommand.self,
            KeygenCommand.self,
        ])

    static func main() async {
        // Before anything starts a thread: see TerminationSignals.
        TerminationSignals.start()
        await main(nil)
    }
}
