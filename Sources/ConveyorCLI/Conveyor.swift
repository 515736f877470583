import ConveyorSystem
import ArgumentParser
import ConveyorJournal
import ConveyorProtocol

/// `conveyor`: one program, a subcommand per job. The root only dispatches.
@main
struct Conveyor: AsyncParsableCommand {
    /// What `--version` prints: the release (``ConveyorVersion/number``), the protocol this build
    /// speaks and the ones it serves, and the journal format it writes (it reads that one and every
    /// older one): `0.1.0 (protocol CVY3; serves CVY3, CVY2; journal format 1)`.
    static let versionLine = "\(ConveyorVersion.number) (protocol \(ProtocolTag.currentText); serves \(ProtocolTag.supportedText.joined(separator: ", ")); journal format \(SegmentHeader.currentVersion))"

    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "A distributed task queue on ZeroMQ: producers, a broker, and consumer processes × threads.",
        version: versionLine,
        subcommands: [
            BrokerCommand.self, ConsumerCommand.self, SubmitCommand.self, StatusCommand.self,
            CancelCommand.self, PurgeCommand.self, PauseCommand.self, ResumeCommand.self, LimitCommand.self, ScheduleCommand.self, StatsCommand.self, DeadLettersCommand.self, FailuresCommand.self, TasksCommand.self, GatewayCommand.self, JournalCommand.self, DemoCommand.self, BenchCommand.self,
            KeygenCommand.self, ConfigCommand.self,
        ])

    /// Read before parsing, for every command (``ConfigLayer``), and taken off the command line
    /// wherever it is; declared here so that help and docs/CLI.md show it.
    @Option(help: ArgumentHelp(
        "A config file (TOML) with option values for every command: shared keys at the top, [COMMAND] sections. Also CONVEYOR_CONFIG. Command line beats environment beats file beats default; see docs/CLI.md.",
        valueName: "file"))
    var config: String?

    static func main() async {
        // Before anything starts a thread: see TerminationSignals.
        TerminationSignals.start()
        // Options from the environment and the config file go on the command line first.
        await ConfigLayer.main()
    }
}
