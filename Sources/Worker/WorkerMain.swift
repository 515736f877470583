import ArgumentParser
public import ConveyorConsumer
import ConveyorSystem
import Synchronization

extension Worker {
    /// The whole `main` of an app that serves its own tasks: the stock `conveyor consumer`'s
    /// command line (`--processes`, `--threads`, `--backend`, `--prefetch`, drain, hard limit,
    /// CURVE, `--log-level`, `--help`), its supervision of several processes and its two-step
    /// stop, around `registry`.
    ///
    /// ```swift
    /// @main enum Thumbnails {
    ///     static func main() async {
    ///         var registry = TaskRegistry()
    ///         registry.register(Thumbnail.self) { args, context in try Thumbnail.make(args) }
    ///         await Worker.main(name: "thumbnails", registry: registry)
    ///     }
    /// }
    /// ```
    /// - Parameters:
    ///   - name: the command's name in its help and logs.
    ///   - abstract: the first line of its `--help`.
    public static func main(name: String, abstract: String? = nil, registry: TaskRegistry) async {
        // Before anything starts a thread, so that no early SIGTERM is lost (TerminationSignals).
        TerminationSignals.start()
        WorkerCommand.setup.withLock { $0 = WorkerCommand.Setup(name: name, abstract: abstract, registry: registry) }
        await WorkerCommand.main()
    }
}

/// The command ``Worker/main(name:abstract:registry:)`` runs.
struct WorkerCommand: AsyncParsableCommand {
    struct Setup: Sendable {
        let name: String
        let abstract: String?
        let registry: TaskRegistry
    }

    /// Set once by ``Worker/main(name:abstract:registry:)`` before parsing.
    static let setup = Mutex<Setup?>(nil)

    static var configuration: CommandConfiguration {
        let setup = setup.withLock { $0 }
        let served = setup?.registry.names.joined(separator: ", ") ?? ""
        return CommandConfiguration(
            commandName: setup?.name,
            abstract: setup?.abstract ?? "A Conveyor worker serving: \(served).",
            discussion: """
                Serves the tasks \(served) from a Conveyor broker's backend, with a pool of worker threads; \
                with --processes P > 1 it supervises P such processes (restarted when they die). The first \
                SIGTERM or Ctrl-C drains (running tasks finish, unstarted ones go back to the broker), a \
                second one stops at once.
                """)
    }

    @OptionGroup var options: WorkerOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard let setup = Self.setup.withLock({ $0 }) else { return }
        try await Worker.run(options, registry: setup.registry, logger: logging.bootstrap(label: setup.name))
    }
}
