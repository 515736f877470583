import ArgumentParser
import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProcess
import ConveyorProtocol
import ConveyorSystem
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Run consumer processes, each with a pool of worker threads, serving the built-in tasks.",
        discussion: """
            With --processes P > 1 this process supervises P child consumer processes (P × threads \
            workers), restarts a child that dies, and on SIGTERM/SIGINT has every child drain: finish \
            running tasks, return their results, hand back what it had not started, and exit (a child \
            still running 5 s after its drain timeout is killed).
            Built-in tasks: echo, sleep {"ms": n}, sha256 {"seed": s, "iterations": n}, fail {"message": m}.
            """)

    @Option(name: [.customShort("b"), .long], help: "The broker's backend endpoint.")
    var backend = "tcp://127.0.0.1:5556"

    @Option(name: [.customShort("t"), .long], help: "Worker threads per process.")
    var threads = 4

    @Option(name: [.customShort("p"), .long], help: "Consumer processes (more than 1: this process supervises them).")
    var processes = 1

    @Option(help: "Tasks the broker may send beyond the free threads: a number, or auto (enough for 5 ms of work at the handlers' measured pace, at most 1000).")
    var prefetch = "auto"

    @Option(help: "Largest args or result of one task in bytes (match the broker's --max-message-size).")
    var maxMessageSize: Int64 = Limits.defaultMaxMessageSize

    @Option(help: "The broker's CURVE public key (Z85), for a broker started with --curve-secret-file.")
    var curveServerKey: String?

    @Option(help: "This consumer's own key pair (a file from conveyor keygen), for a broker that authenticates clients: its public key must be on the broker's clients file with the consume role.")
    var curveSecretFile: String?

    @Option(help: "Heartbeat interval in milliseconds.")
    var heartbeatMs = 1000

    @Option(help: "Seconds a drain waits for running tasks.")
    var drainTimeout: Double = 60

    @Option(help: "Seconds past a task's own timeout after which a handler counts as stuck and this process is replaced.")
    var hardLimitGrace: Double = 30

    @Option(help: "Append one JSON line per task started (id, name, attempt, pid, thread) to this file: an audit of what ran where (shared safely by every process and thread).")
    var executionLog: String?

    @Option(help: .hidden)
    var processIndex: Int?

    @OptionGroup var logging: LoggingOptions

    /// How long a supervised child may take after SIGTERM beyond its drain timeout (to send its
    /// last results and leave) before the supervisor kills it.
    static let shutdownMargin: Duration = .seconds(5)

    func validate() throws {
        try Endpoints.validate(backend, option: "--backend", example: "tcp://127.0.0.1:5556")
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1-1024") }
        guard (1...256).contains(processes) else { throw ValidationError("--processes must be 1-256") }
        guard Prefetch(prefetch) != nil else { throw ValidationError("--prefetch must be auto or a number 0-100000") }
        guard (1024...Limits.maxMessageSizeLimit).contains(maxMessageSize) else {
            throw ValidationError("--max-message-size must be 1024-\(Limits.maxMessageSizeLimit)")
        }
        if let curveServerKey { _ = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile {
            _ = try CurveKeys.keyPair(file: curveSecretFile)
            guard curveServerKey != nil else {
                throw ValidationError("--curve-secret-file needs --curve-server-key KEY: the broker's public key")
            }
        }
        guard heartbeatMs >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        guard drainTimeout >= 0, drainTimeout <= 86_400 else { throw ValidationError("--drain-timeout must be 0-86400 seconds") }
    }

    func run() async throws {
        let logger = logging.bootstrap(label: "conveyor.consumer")
        if processes > 1 {
            try await supervise(logger: logger)
        } else {
            try await serve(logger: logger)
        }
    }

    /// `--processes P`: P children of this same executable, each given this command's own
    /// arguments (minus `--processes`) and its index.
    private func supervise(logger: Logger) async throws {
        // `consumer` and its options as this process got them, less what makes it a supervisor.
        let passed = Supervisor.arguments(Array(CommandLine.arguments.dropFirst()), removing: ["--processes", "-p", "--process-index"])
        var configuration = Supervisor.Configuration(
            executable: Supervisor.currentExecutablePath(), count: processes,
            shutdownGrace: .milliseconds(Int(drainTimeout * 1000)) + Self.shutdownMargin
        ) { index in passed + ["--process-index", "\(index)"] }
        // A child that cannot work as configured (the wrong port, another protocol) stops them all.
        configuration.stopStatus = Consumer.misconfiguredExitCode
        let supervisor = Supervisor(configuration: configuration, logger: logger)
        do {
            // The first signal drains the children (the supervisor's SIGTERM); a second one is
            // passed on, and each child stops at once, handing back what it has not started.
            try await ConveyorServices.run([supervisor], logger: logger, again: {
                printError("stopping now: each process hands back the tasks it has not started and exits; running tasks go back to the broker, which gives them to another consumer")
                supervisor.signalChildren(SIGTERM)
            })
        } catch let error as Supervisor.ChildMisconfigured {
            printError("error: \(error)")
            Self.exitProcess(Consumer.misconfiguredExitCode)
        }
    }

    /// One consumer process (supervised or not), as a Service in a group that SIGTERM and SIGINT
    /// shut down gracefully.
    private func serve(logger: Logger) async throws {
        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = threads
        configuration.prefetch = Prefetch(prefetch) ?? .automatic()
        configuration.maxMessageSize = maxMessageSize
        if let curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile {
            if let warning = CurveKeys.exposure(of: curveSecretFile) {
                logger.warning("secret key file readable by others", metadata: ["warning": "\(warning)"])
            }
            configuration.curveClientKeys = try CurveKeys.keyPair(file: curveSecretFile)
        }
        configuration.heartbeatInterval = .milliseconds(heartbeatMs)
        configuration.processIndex = processIndex
        configuration.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        configuration.hardLimitGrace = .milliseconds(Int(hardLimitGrace * 1000))
        if let executionLog {
            do {
                configuration.executionLog = try ExecutionLog(path: executionLog)
            } catch {
                printError("error: \(error)")
                throw ExitCode.failure
            }
        }
        let consumer = Consumer(configuration: configuration, registry: BuiltinTasks.registry, logger: logger)
        var services: [any Service] = [consumer]
        if processIndex != nil {
            // A supervised child drains and exits if its supervisor disappears (even by SIGKILL),
            // rather than run on as an orphan: through SIGTERM, the path a signal from outside takes.
            services.append(ParentProcessWatch(logger: logger) { _ = kill(getpid(), SIGTERM) })
        }
        do {
            try await ConveyorServices.run(services, logger: logger, again: {
                // A second signal: no more waiting for running tasks.
                if processIndex == nil {
                    printError("stopping now: handing back the tasks not started; running tasks go back to the broker, which gives them to another consumer")
                }
                consumer.stopNow()
            })
        } catch let error as Consumer.StuckHandler {
            logger.critical("exiting for replacement", metadata: ["reason": "\(error)"])
            // The stuck thread cannot be joined or killed; ending the process is the only way out.
            Self.exitProcess(Consumer.stuckExitCode)
        } catch let error as Consumer.Misconfigured {
            printError("error: \(error)")
            Self.exitProcess(Consumer.misconfiguredExitCode)
        } catch let error as Consumer.ProtocolMismatch {
            printError("error: \(error)")
            Self.exitProcess(Consumer.misconfiguredExitCode)
        } catch let error as Consumer.DrainTimedOut where consumer.isStoppingNow {
            logger.notice("consumer stopped at once", metadata: ["tasks.abandoned": "\(error.abandoned)"])
            Self.exitProcess(ExitStatus.interrupted)
        } catch let error as Consumer.DrainTimedOut {
            logger.warning("exiting with work abandoned", metadata: ["reason": "\(error)"])
            Self.exitProcess(1)
        }
    }

    /// Ends the process at once, without joining threads that cannot be joined.
    private static func exitProcess(_ status: Int32) -> Never {
        #if canImport(Glibc)
        Glibc.exit(status)
        #elseif canImport(Darwin)
        Darwin.exit(status)
        #endif
    }
}
