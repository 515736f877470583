import ArgumentParser
import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import ConveyorSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Keeps the supervised child's parent watch alive for the life of the process; written once by
// `run()` on the main thread before any other thread exists that could read it.
nonisolated(unsafe) private var orphanWatch: (any DispatchSourceTimer)?

struct ConsumerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Run consumer processes, each with a pool of worker threads, serving the built-in tasks.",
        discussion: """
            With --processes P > 1 this process supervises P child consumer processes (P × threads \
            workers), restarts a child that dies, and on SIGTERM/SIGINT has every child drain: finish \
            running tasks, return their results, hand back what it had not started, and exit.
            Built-in tasks: echo, sleep {"ms": n}, sha256 {"seed": s, "iterations": n}, fail {"message": m}.
            """)

    @Option(help: "The broker's backend endpoint.")
    var backend = "tcp://127.0.0.1:5556"

    @Option(help: "Worker threads per process.")
    var threads = 4

    @Option(help: "Consumer processes (more than 1: this process supervises them).")
    var processes = 1

    @Option(help: "Tasks the broker may send beyond the free threads: a number, or auto (enough for 5 ms of work at the handlers' measured pace, at most 1000).")
    var prefetch = "auto"

    @Option(help: "Largest args or result of one task in bytes (match the broker's --max-message-size).")
    var maxMessageSize: Int64 = Limits.defaultMaxMessageSize

    @Option(help: "The broker's CURVE public key (Z85), for a broker started with --curve-secret-file.")
    var curveServerKey: String?

    @Option(help: "Heartbeat interval in milliseconds.")
    var heartbeatMs = 1000

    @Option(help: "Seconds a drain waits for running tasks.")
    var drainTimeout: Double = 60

    @Option(help: "Seconds past a task's own timeout after which a handler counts as stuck and this process is replaced.")
    var hardLimitGrace: Double = 30

    @Option(help: .hidden)
    var processIndex: Int?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1-1024") }
        guard (1...256).contains(processes) else { throw ValidationError("--processes must be 1-256") }
        guard Prefetch(prefetch) != nil else { throw ValidationError("--prefetch must be auto or a number 0-100000") }
        guard (1024...Limits.maxMessageSizeLimit).contains(maxMessageSize) else {
            throw ValidationError("--max-message-size must be 1024-\(Limits.maxMessageSizeLimit)")
        }
        if let curveServerKey { _ = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        guard heartbeatMs >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
    }

    func run() throws {
        let logger = logging.bootstrap(label: "conveyor.consumer")
        if processes > 1 {
            let curve = curveServerKey.map { ["--curve-server-key", $0] } ?? []
            let childArguments = ["consumer", "--backend", backend, "--threads", "\(threads)",
                                  "--prefetch", "\(prefetch)", "--heartbeat-ms", "\(heartbeatMs)", "--max-message-size", "\(maxMessageSize)",
                                  "--drain-timeout", "\(drainTimeout)", "--hard-limit-grace", "\(hardLimitGrace)",
                                  "--log-level", logging.logLevel] + curve
            let supervisor = Supervisor(count: processes, arguments: childArguments, logger: logger)
            TerminationSignals.install { _ in supervisor.stop() }
            try supervisor.run()
            return
        }
        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = threads
        configuration.prefetch = Prefetch(prefetch) ?? .automatic()
        configuration.maxMessageSize = maxMessageSize
        if let curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        configuration.heartbeatInterval = .milliseconds(heartbeatMs)
        configuration.processIndex = processIndex
        configuration.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        configuration.hardLimitGrace = .milliseconds(Int(hardLimitGrace * 1000))
        let consumer = try Consumer(configuration: configuration, registry: BuiltinTasks.registry, logger: logger)
        TerminationSignals.install { _ in consumer.stop() }
        if processIndex != nil {
            // A supervised child drains and exits if its supervisor disappears (even by SIGKILL),
            // rather than run on as an orphan.
            let supervisor = getppid()
            let watch = DispatchSource.makeTimerSource(queue: .global())
            watch.schedule(deadline: .now() + 1, repeating: 1)
            watch.setEventHandler {
                if getppid() != supervisor { consumer.stop() }
            }
            watch.resume()
            orphanWatch = watch
        }
        consumer.start()
        do {
            try consumer.wait()
        } catch let error as Consumer.StuckHandler {
            logger.critical("exiting for replacement", metadata: ["reason": "\(error)"])
            // The stuck thread cannot be joined or killed; ending the process is the only way out.
            Glibc.exit(Consumer.stuckExitCode)
        } catch let error as Consumer.DrainTimedOut {
            logger.warning("exiting with work abandoned", metadata: ["reason": "\(error)"])
            Glibc.exit(1)
        }
    }
}
