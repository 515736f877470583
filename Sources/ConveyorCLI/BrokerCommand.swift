import ConveyorWorker
import ArgumentParser
import ConveyorBroker
import ConveyorJournal
import ConveyorMetrics
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ZeroMQ

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a broker: producers connect to its frontend, consumers to its backend.",
        discussion: "Prints 'frontend ENDPOINT' and 'backend ENDPOINT' once both are bound. Stops on SIGINT or SIGTERM.")

    @Option(help: "Endpoint producers connect to (tcp://HOST:* picks a free port).")
    var frontend = "tcp://127.0.0.1:5555"

    @Option(help: "Endpoint consumers connect to (tcp://HOST:* picks a free port).")
    var backend = "tcp://127.0.0.1:5556"

    @Option(help: "Tasks that may wait in the queue; submits past this are rejected.")
    var maxQueued = 1_000_000

    @Option(help: "Bytes of args the broker may hold for tasks not yet done (queued, waiting to retry, running); submits past this are rejected.")
    var maxQueuedBytes = 1 << 30

    @Option(help: "Percent of --max-queued and of --max-queued-bytes that one producer and one task name may hold, so that a flood from one, or a backlog of a name nobody serves, leaves the rest to the others (100: no shares).")
    var queueShare = 50

    @Option(help: "Largest args of one task in bytes (larger ones are rejected; frames may be 2 MiB larger, for packing).")
    var maxMessageSize: Int64 = Limits.defaultMaxMessageSize

    @Option(help: "Serve GET /metrics (Prometheus text), /healthz and /readyz on HOST:PORT (for example 127.0.0.1:9464; port 0: any free one, printed as 'metrics http://HOST:PORT/metrics'). HTTP without TLS: keep it on a private address.")
    var metricsListen: String?

    @Option(help: "Finished results kept for status queries.")
    var keepResults = 100_000

    @Option(help: "Seconds a finished result is kept.")
    var resultTTL: Double = 3600

    @Option(help: "Bytes of finished results kept (the oldest go first).")
    var keepResultBytes = 256 << 20

    @Option(help: "Bytes the broker may have sent one producer connection that it has not read; past it, replies to it are dropped (and it is told) until it reads.")
    var maxUnreadBytes = 64 << 20

    @Option(help: "The broker's memory budget, e.g. 2G: sets --max-queued-bytes (40%), --keep-result-bytes (20%), dead letters' bytes (10%), all producers' unread bytes (20%) and --max-queued (records of about 400 bytes in 10%), each unless given. See docs/RELIABILITY.md.")
    var maxMemory: String?

    @Option(help: "Heartbeat interval in milliseconds.")
    var heartbeatMs = 1000

    @Option(help: "Missed heartbeats before a consumer is declared dead.")
    var liveness = 4

    @Option(help: "Where the broker keeps its journal: every task it accepted, every kept result and dead letter survive a crash or restart (created if missing; one broker per directory).")
    var dataDir = "./conveyor-data"

    @Flag(help: "Keep everything in memory only, as before: a stop or crash loses every queued task and kept result.")
    var inMemory = false

    @Option(help: "When the journal is made durable: always (group commit: nothing acknowledged is ever lost), interval:MS (a process crash loses nothing, a machine crash up to MS), never (the OS decides). See docs/RELIABILITY.md.")
    var fsync = "always"

    @Option(help: ArgumentHelp("Bytes per journal segment (a new one starts when one is full; sealed ones are compacted).", visibility: .hidden))
    var journalSegmentBytes = 64 << 20

    @Flag(help: "Start even when the journal is damaged in the middle: skip the damaged bytes, keep every readable record, and log what was skipped.")
    var journalRepair = false

    @Option(help: "Seconds a dispatched task's lease lasts: a consumer that neither answers nor renews it within that (consumers renew what they hold every heartbeat) loses the task to another consumer.")
    var leaseSeconds: Double = 30

    @Option(help: "Seconds a stopping broker (SIGTERM) waits for the results of running tasks, taking no new ones; a second SIGTERM stops it at once.")
    var drainTimeout: Double = 30

    @Option(help: "A file with the broker's CURVE secret key (from conveyor keygen): every connection is encrypted and needs the broker's public key. Needs --curve-clients-file (or --curve-allow-any-client).")
    var curveSecretFile: String?

    @Option(help: "The client keys this CURVE broker lets in, one a line: KEY NAME roles=submit,consume,admin,gateway [tasks=NAME,...] (docs/SECURITY.md). Reloaded on SIGHUP.")
    var curveClientsFile: String?

    @Flag(help: "With --curve-secret-file and no clients file: let every client that has the broker's public key connect and do everything (submit, consume, administer).")
    var curveAllowAnyClient = false

    @Option(help: "TCP connections kept at most (both sockets together); one past it is closed at once. Never more than the open-files limit less 128.")
    var maxConnections = 10_000

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        try Endpoints.validate(frontend, option: "--frontend", example: "tcp://127.0.0.1:5555", binds: true)
        try Endpoints.validate(backend, option: "--backend", example: "tcp://127.0.0.1:5556", binds: true)
        if let curveSecretFile { _ = try CurveKeys.secretKey(file: curveSecretFile) }
        if let curveClientsFile {
            guard curveSecretFile != nil else {
                throw ValidationError("--curve-clients-file needs --curve-secret-file FILE: client keys are checked in the CURVE handshake")
            }
            guard !curveAllowAnyClient else {
                throw ValidationError("choose --curve-clients-file or --curve-allow-any-client, not both")
            }
            do {
                _ = try AllowList.load(path: curveClientsFile)
            } catch {
                throw ValidationError("\(error)")
            }
        } else if curveSecretFile != nil && !curveAllowAnyClient {
            throw ValidationError("--curve-secret-file needs --curve-clients-file FILE, the client keys it lets in and what each may do (docs/SECURITY.md); --curve-allow-any-client lets everyone who has the broker's public key do everything")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard maxQueued > 0 else { throw ValidationError("--max-queued must be at least 1") }
        guard maxQueuedBytes >= 1024 else { throw ValidationError("--max-queued-bytes must be at least 1024") }
        guard (1...100).contains(queueShare) else { throw ValidationError("--queue-share must be 1-100 (percent)") }
        guard (1024...Limits.maxMessageSizeLimit).contains(maxMessageSize) else {
            throw ValidationError("--max-message-size must be 1024-\(Limits.maxMessageSizeLimit)")
        }
        guard heartbeatMs >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        guard liveness >= 2 else { throw ValidationError("--liveness must be at least 2") }
        guard leaseSeconds >= 1, leaseSeconds <= 86_400 else { throw ValidationError("--lease-seconds must be 1-86400") }
        guard drainTimeout >= 0, drainTimeout <= 86_400 else { throw ValidationError("--drain-timeout must be 0-86400 seconds") }
        guard FsyncPolicy(fsync) != nil else {
            throw ValidationError("--fsync must be always, interval:MS (1-60000) or never, not '\(fsync)'")
        }
        guard journalSegmentBytes >= 4096 else { throw ValidationError("--journal-segment-bytes must be at least 4096") }
        guard keepResultBytes >= 0 else { throw ValidationError("--keep-result-bytes must be at least 0") }
        guard maxUnreadBytes >= 65_536 else { throw ValidationError("--max-unread-bytes must be at least 65536") }
        if let maxMemory {
            guard let bytes = Self.byteCount(maxMemory), bytes >= 64 << 20 else {
                throw ValidationError("--max-memory must be a size of at least 64M, like 512M or 4G, not '\(maxMemory)'")
            }
        }
    }

    /// `1234`, `512K`, `64M`, `4G` (powers of 1024).
    static func byteCount(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let value = Double(digits), value > 0, value * Double(scale) < 9e18 else { return nil }
        return Int(value * Double(scale))
    }

    /// What `--max-memory` sets, for each value still at its default.
    func applyMemoryBudget(_ configuration: inout BrokerConfiguration) {
        guard let maxMemory, let budget = Self.byteCount(maxMemory) else { return }
        let defaults = BrokerConfiguration()
        if maxQueuedBytes == defaults.maxQueuedBytes { configuration.maxQueuedBytes = budget / 10 * 4 }
        if keepResultBytes == defaults.resultRetentionBytes { configuration.resultRetentionBytes = budget / 10 * 2 }
        configuration.deadLetterBytes = budget / 10
        configuration.maxUnreadTotal = budget / 10 * 2
        if maxUnreadBytes == defaults.maxUnreadBytes {
            configuration.maxUnreadBytes = min(defaults.maxUnreadBytes, max(65_536, configuration.maxUnreadTotal / 4))
        }
        if maxQueued == defaults.maxQueued { configuration.maxQueued = max(1000, budget / 10 / 400) }
    }

    func run() async throws {
        let logger = logging.bootstrap(label: "conveyor.broker")
        if let limit = raiseFileDescriptorLimit() {
            logger.debug("open files limit", metadata: ["soft": "\(limit.soft)", "hard": "\(limit.hard)"])
        }
        var configuration = BrokerConfiguration()
        configuration.frontend = frontend
        configuration.backend = backend
        configuration.maxQueued = maxQueued
        configuration.maxQueuedBytes = maxQueuedBytes
        configuration.queueShare = queueShare
        configuration.maxMessageSize = maxMessageSize
        // Metrics only when served: without --metrics-listen nothing is recorded (no cost at all).
        let metrics = metricsListen.map { _ in MetricsRegistry() }
        if let metrics {
            configuration.monitor = BrokerMonitor()
            configuration.metricsFactory = metrics.factory
        }
        configuration.resultRetentionCount = keepResults
        configuration.resultRetention = .milliseconds(Int(resultTTL * 1000))
        configuration.resultRetentionBytes = keepResultBytes
        configuration.maxUnreadBytes = maxUnreadBytes
        applyMemoryBudget(&configuration)
        configuration.heartbeatInterval = .milliseconds(heartbeatMs)
        configuration.liveness = liveness
        configuration.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        configuration.leaseDuration = .milliseconds(Int(leaseSeconds * 1000))
        if !inMemory {
            var journal = JournalConfiguration(directory: dataDir)
            journal.fsync = FsyncPolicy(fsync)!
            journal.segmentBytes = journalSegmentBytes
            journal.deadLetterCapacity = configuration.deadLetterCapacity
            journal.repair = journalRepair
            journal.metricsFactory = metrics?.factory
            configuration.journal = journal
        }
        configuration.maxConnections = maxConnections
        var curvePublicKey: String?
        if let curveSecretFile {
            if let warning = CurveKeys.exposure(of: curveSecretFile) {
                logger.warning("the broker's secret key file is readable by others", metadata: ["warning": "\(warning)"])
            }
            let secret = try CurveKeys.secretKey(file: curveSecretFile)
            configuration.curveSecretKey = secret
            curvePublicKey = try Z85.encode(CurveKeyPair(secretKey: secret).publicKey)
            if curveAllowAnyClient {
                logger.warning("clients are not authenticated (--curve-allow-any-client): everyone who has the broker's public key may submit, consume and administer")
            }
        }
        if let curveClientsFile {
            do {
                let list = try AllowList.load(path: curveClientsFile)
                configuration.clientAllowList = list
                logger.info("clients authenticated", metadata: ["clients_file": "\(curveClientsFile)", "keys": "\(list.count)"])
            } catch {
                printError("error: \(error)")
                throw ExitCode.failure
            }
        }
        let broker = Broker(configuration: configuration, logger: logger)
        if configuration.clientAllowList != nil {
            // SIGHUP: read the clients file again (a bad one is refused and the old list kept; the
            // broker logs which).
            TerminationSignals.installHangup { _ in _ = try? broker.reloadClientAllowList() }
        } else {
            // Nothing to reload, but a reload (kill -HUP, systemctl reload) must not end the broker.
            TerminationSignals.installHangup { [logger] _ in
                logger.notice("SIGHUP: nothing to reload (no --curve-clients-file); the broker goes on")
            }
        }
        let publicKey = curvePublicKey
        var listener: MetricsListener?
        if let metricsListen, let monitor = configuration.monitor, let metrics {
            do {
                listener = try MetricsListener(address: metricsListen, endpoints: BrokerExposition(monitor: monitor, metrics: metrics))
            } catch {
                printError("error: \(error)")
                throw ExitCode.validationFailure
            }
        }
        defer { listener?.close() }
        let metricsAddress = listener.map { MetricsListener.url(address: metricsListen!, port: $0.port) }
        do {
            try await ConveyorServices.run([broker], logger: logger, started: { _ in
                let endpoints = try await broker.endpoints()
                printLine("frontend \(endpoints.frontend)")
                printLine("backend \(endpoints.backend)")
                if let publicKey { printLine("curve-public-key \(publicKey)") }
                if let metricsAddress { printLine("metrics \(metricsAddress)") }
                logger.info("broker listening", metadata: ["frontend": "\(endpoints.frontend)", "backend": "\(endpoints.backend)",
                                                          "version": "\(ConveyorVersion.number)", "protocol": "\(ProtocolTag.currentText)",
                                                          "journal_format": "\(SegmentHeader.currentVersion)"])
            }, again: { broker.stopNow() })
        } catch let error as BrokerStartError {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}
