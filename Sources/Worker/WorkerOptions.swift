public import ArgumentParser
import ConveyorConsumer
import ConveyorProtocol

/// The options of a consumer process (and of its supervisor, with `--processes`): the stock
/// `conveyor consumer`'s, and those of every worker an app makes with ``ConveyorWorker``.
public struct WorkerOptions: ParsableArguments {
    public init() {}

    @Option(name: [.customShort("b"), .long], help: "The broker's backend endpoint.")
    public var backend = "tcp://127.0.0.1:5556"

    @Option(name: [.customShort("t"), .long], help: "Worker threads per process.")
    public var threads = 4

    @Option(name: [.customShort("p"), .long], help: "Consumer processes (more than 1: this process supervises them).")
    public var processes = 1

    @Option(help: "Tasks the broker may send beyond the free threads: a number, or auto (enough for 5 ms of work at the handlers' measured pace, at most 1000).")
    public var prefetch = "auto"

    @Option(help: "Largest args or result of one task in bytes (match the broker's --max-message-size).")
    public var maxMessageSize: Int64 = Limits.defaultMaxMessageSize

    @Option(help: "The broker's CURVE public key (Z85), for a broker started with --curve-secret-file.")
    public var curveServerKey: String?

    @Option(help: "This consumer's own key pair (a file from conveyor keygen), for a broker that authenticates clients: its public key must be on the broker's clients file with the consume role.")
    public var curveSecretFile: String?

    @Option(help: "Heartbeat interval in milliseconds.")
    public var heartbeatMs = 1000

    @Option(help: "Seconds a drain waits for running tasks.")
    public var drainTimeout: Double = 60

    @Option(help: "Seconds past a task's own timeout after which a handler counts as stuck and this process is replaced.")
    public var hardLimitGrace: Double = 30

    @Option(help: "Append one JSON line per task started (id, name, attempt, pid, thread) to this file: an audit of what ran where (shared safely by every process and thread).")
    public var executionLog: String?

    @Option(help: "Serve /metrics, /healthz and /readyz on this HOST:PORT (plain HTTP; 0 for any free port). With --processes P the supervisor serves HOST:PORT and process i serves PORT+1+i (docs/OBSERVABILITY.md).")
    public var metricsListen: String?

    @Option(help: .hidden)
    public var processIndex: Int?


    public func validate() throws {
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

}
