import ArgumentParser
public import ConveyorConsumer
import ConveyorMetrics
import ConveyorProcess
import ConveyorProtocol
import ConveyorSystem
import Foundation
public import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a consumer as the stock `conveyor consumer` does: one process serving `registry`, or with
/// `--processes P` a supervisor of P such processes (this same executable run again with the same
/// arguments), restarted when they die, drained at the first SIGTERM or Ctrl-C and stopped at once
/// at the second.
public enum Worker {
    /// How long a supervised child may take after SIGTERM beyond its drain timeout (to send its
    /// last results and leave) before the supervisor kills it.
    static let shutdownMargin: Duration = .seconds(5)

    /// Serves `registry` with `options` until a signal (or a supervisor) stops it. Exits the
    /// process itself where threads cannot be joined (a stuck handler, a drain given up).
    public static func run(_ options: WorkerOptions, registry: TaskRegistry, logger: Logger) async throws {
        if options.processes > 1 {
            try await supervise(options, logger: logger)
        } else {
            try await serve(options, registry: registry, logger: logger)
        }
    }

    /// `--processes P`: P children of this same executable, each given this command's own
    /// arguments (minus `--processes`) and its index.
    static func supervise(_ options: WorkerOptions, logger: Logger) async throws {
        // `consumer` and its options as this process got them, less what makes it a supervisor.
        let passed = Supervisor.arguments(Array(CommandLine.arguments.dropFirst()), removing: ["--processes", "-p", "--process-index"])
        var configuration = Supervisor.Configuration(
            executable: Supervisor.currentExecutablePath(), count: options.processes,
            shutdownGrace: .milliseconds(Int(options.drainTimeout * 1000)) + shutdownMargin
        ) { index in passed + ["--process-index", "\(index)"] }
        // A child that cannot work as configured (the wrong port, another protocol) stops them all.
        configuration.stopStatus = Consumer.misconfiguredExitCode
        let supervisor = Supervisor(configuration: configuration, logger: logger)
        let listener = options.metricsListen.map { address in
            listen(address, SupervisorExposition(supervisor: supervisor, metrics: MetricsRegistry(), processes: options.processes))
        }
        defer { listener?.close() }
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
    static func serve(_ options: WorkerOptions, registry: TaskRegistry, logger: Logger) async throws {
        var configuration = ConsumerConfiguration()
        configuration.backend = options.backend
        configuration.threads = options.threads
        configuration.prefetch = Prefetch(options.prefetch) ?? .automatic()
        configuration.maxMessageSize = options.maxMessageSize
        if let curveServerKey = options.curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile = options.curveSecretFile {
            if let warning = CurveKeys.exposure(of: curveSecretFile) {
                logger.warning("secret key file readable by others", metadata: ["warning": "\(warning)"])
            }
            configuration.curveClientKeys = try CurveKeys.keyPair(file: curveSecretFile)
        }
        configuration.heartbeatInterval = .milliseconds(options.heartbeatMs)
        configuration.processIndex = options.processIndex
        configuration.drainTimeout = .milliseconds(Int(options.drainTimeout * 1000))
        configuration.hardLimitGrace = .milliseconds(Int(options.hardLimitGrace * 1000))
        if let executionLog = options.executionLog {
            do {
                configuration.executionLog = try ExecutionLog(path: executionLog)
            } catch {
                printError("error: \(error)")
                exitProcess(1)
            }
        }
        var listener: MetricsListener?
        if let address = options.metricsListen {
            let metrics = MetricsRegistry()
            let monitor = ConsumerMonitor(names: registry.names, factory: metrics.factory)
            configuration.monitor = monitor
            listener = listen(options.processIndex.map { WorkerMetrics.childAddress(address, index: $0) } ?? address,
                              ConsumerExposition(monitor: monitor, metrics: metrics, threads: options.threads))
        }
        defer { listener?.close() }
        let consumer = Consumer(configuration: configuration, registry: registry, logger: logger)
        var services: [any Service] = [consumer]
        if options.processIndex != nil {
            // A supervised child drains and exits if its supervisor disappears (even by SIGKILL),
            // rather than run on as an orphan: through SIGTERM, the path a signal from outside takes.
            services.append(ParentProcessWatch(logger: logger) { _ = kill(getpid(), SIGTERM) })
        }
        let supervised = options.processIndex != nil
        do {
            try await ConveyorServices.run(services, logger: logger, again: {
                // A second signal: no more waiting for running tasks.
                if !supervised {
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
            Self.exitProcess(130)
        } catch let error as Consumer.DrainTimedOut {
            logger.warning("exiting with work abandoned", metadata: ["reason": "\(error)"])
            Self.exitProcess(1)
        }
    }

    /// `--metrics-listen`: the listener, or the process exits 64 saying why it cannot listen.
    static func listen(_ address: String, _ endpoints: any MetricsEndpoints) -> MetricsListener {
        do {
            return try WorkerMetrics.listen(address, endpoints)
        } catch {
            printError("error: \(error)")
            exitProcess(64)
        }
    }

    /// Ends the process at once, without joining threads that cannot be joined.
    static func exitProcess(_ status: Int32) -> Never {
        #if canImport(Glibc)
        Glibc.exit(status)
        #elseif canImport(Darwin)
        Darwin.exit(status)
        #endif
    }
}
