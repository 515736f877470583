public import ConveyorJournal
public import CoreMetrics
import ConveyorProtocol
import ConveyorSystem

/// Everything a broker can be told at start.
public struct BrokerConfiguration: Sendable {
    /// Where producers connect (a ROUTER binds here).
    public var frontend = "tcp://127.0.0.1:5555"
    /// Where consumers connect (a ROUTER binds here).
    public var backend = "tcp://127.0.0.1:5556"
    /// Tasks that may wait in the queue at once; a submit past this is rejected.
    public var maxQueued = 1_000_000
    /// Bytes of args the broker may hold for tasks not yet done (queued, delayed, running); a
    /// submit past this is rejected.
    public var maxQueuedBytes = 1 << 30
    /// The part of each of those two bounds, in percent, that one producer identity, and one
    /// task name, may hold: a flood from one producer, or a backlog of a name nobody serves,
    /// leaves the rest to everyone else (docs/ARCHITECTURE.md, "The dispatch rule and fair shares").
    public var queueShare = 50
    /// Bytes the broker may have sent one producer connection that it has not reported read
    /// (`READ`), and all of them together: past either, replies to it are dropped (and it is
    /// told) until it reads. What libzmq holds for peers that do not read is bounded by these.
    public var maxUnreadBytes = 64 << 20
    public var maxUnreadTotal = 256 << 20
    /// Finished results kept for `status` queries and resubmissions…
    public var resultRetentionCount = 100_000
    /// …in at most this many bytes of results (the oldest go first)…
    public var resultRetentionBytes = 256 << 20
    /// …and for at most this long.
    public var resultRetention: Duration = .seconds(3600)
    /// Interval of broker↔consumer heartbeats; a consumer silent for `liveness` intervals is dead.
    public var heartbeatInterval: Duration = .seconds(1)
    public var liveness = 4
    /// Largest args of one task in bytes: larger ones are rejected. Sockets take frames up to this
    /// plus ``Limits/packedFrameAllowance`` (ZMQ_MAXMSGSIZE), room for packed groups.
    public var maxMessageSize: Int64 = Limits.defaultMaxMessageSize
    /// Where the broker shows its statistics, liveness and readiness to other threads (a metrics
    /// or health listener); `nil`: nowhere.
    public var monitor: BrokerMonitor?
    /// Where per-name counters, latency histograms and the journal's fsync timings go
    /// (swift-metrics; the CLI gives a swift-prometheus factory): `nil` records nothing, at no
    /// cost. Not `MetricsSystem.factory`, so that two brokers in one process (tests) keep theirs apart.
    public var metricsFactory: (any MetricsFactory)?
    /// Tasks sent to one consumer in one DISPATCH message at most.
    public var dispatchBatch = 64
    /// Dead-letter entries kept (tasks that used up their attempts), and bytes of their args.
    public var deadLetterCapacity = 10_000
    public var deadLetterBytes = 128 << 20
    /// The broker's CURVE secret key (32 bytes). When set, both sockets are CURVE servers: every
    /// connection is encrypted, and only clients that know the matching public key can talk to
    /// the broker. Clients are authenticated only with a ``clientAllowList``.
    public var curveSecretKey: [UInt8]?
    /// The client keys a CURVE broker lets in, each with its identity, roles and task names
    /// (docs/SECURITY.md); the broker answers libzmq's ZAP requests from it on a thread of its own
    /// and checks every command against the sender's roles. `nil`: every client that has the
    /// broker's public key may connect and do everything. Needs ``curveSecretKey``.
    public var clientAllowList: AllowList?
    /// TCP connections (both sockets together) the broker keeps at most; one past it is closed at
    /// once, before its handshake (a rate-limited log line says so). Never more than the process's
    /// open-files limit less a reserve of 128 descriptors, so that libzmq never runs out of them.
    public var maxConnections = 10_000
    /// How long a new connection may take to complete its ZMTP handshake (`ZMQ_HANDSHAKE_IVL`):
    /// one that connects and says nothing is closed after it.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long a dispatched task's lease lasts: a consumer that neither answers nor renews it
    /// (RENEW, which consumers send every heartbeat interval for what they hold) within it loses
    /// the task to another consumer, the attempt counted.
    public var leaseDuration: Duration = .seconds(30)
    /// How long a stopping broker waits for the results of tasks running on consumers (taking no
    /// new tasks and dispatching none meanwhile); a second stop request ends the wait at once.
    public var drainTimeout: Duration = .seconds(30)
    /// Where and how the broker journals its state (docs/RELIABILITY.md); `nil` keeps everything
    /// in memory only, lost when the broker stops.
    public var journal: JournalConfiguration?

    public init() {}
}
