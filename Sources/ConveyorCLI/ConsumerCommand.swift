import ArgumentParser
import ConveyorBuiltinTasks
import ConveyorWorker

struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Run consumer processes, each with a pool of worker threads, serving the built-in tasks.",
        discussion: """
            With --processes P > 1 this process supervises P child consumer processes (P × threads \
            workers), restarts a child that dies, and on SIGTERM/SIGINT has every child drain: finish \
            running tasks, return their results, hand back what it had not started, and exit (a child \
            still running 5 s after its drain timeout is killed); a second signal stops them at once.
            Built-in tasks: echo, sleep {"ms": n}, sha256 {"seed": s, "iterations": n}, fail {"message": m}, \
            flaky {"failures": n}, trace {} (returns the trace context it got). An app serves its own tasks with the same options through ConveyorWorker.
            """)

    @OptionGroup var options: WorkerOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await Worker.run(options, registry: BuiltinTasks.registry, logger: logging.bootstrap(label: "conveyor.consumer"))
    }
}
