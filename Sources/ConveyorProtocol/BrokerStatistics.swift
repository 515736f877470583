/// What `STATS` answers (docs/PROTOCOL.md §6.7): one Codable type used by the broker that writes
/// it, the producer that reads it, the CLI that prints it and the test harness that waits on it.
public struct BrokerStatistics: Codable, Sendable, Equatable {
    public struct Consumer: Codable, Sendable, Equatable {
        public var pid: Int
        public var host: String
        public var process: Int?
        public var threads: Int
        public var capacity: Int
        public var inFlight: Int
        public var freeCredit: Int
        public var completed: Int
        public var tasks: [String]
        /// Leases that ran out on it (tasks taken back), and whether that quarantined it (no new
        /// dispatches until it answers a task). Absent from older brokers.
        public var leasesExpired: Int?
        public var quarantined: Bool?
        /// Who it is: its key's name in the broker's clients file, or its routing id as text.
        /// Absent from older brokers.
        public var identity: String?

        enum CodingKeys: String, CodingKey {
            case pid, host, process, threads, capacity, completed, tasks, quarantined, identity
            case inFlight = "in_flight"
            case freeCredit = "free_credit"
            case leasesExpired = "leases_expired"
        }

        public init(pid: Int, host: String, process: Int?, threads: Int, capacity: Int, inFlight: Int,
                    freeCredit: Int, completed: Int, tasks: [String], leasesExpired: Int? = nil, quarantined: Bool? = nil,
                    identity: String? = nil) {
            self.identity = identity
            self.leasesExpired = leasesExpired
            self.quarantined = quarantined
            self.pid = pid
            self.host = host
            self.process = process
            self.threads = threads
            self.capacity = capacity
            self.inFlight = inFlight
            self.freeCredit = freeCredit
            self.completed = completed
            self.tasks = tasks
        }
    }

    /// Counters since the broker started.
    public struct Totals: Codable, Sendable, Equatable {
        public var submitted = 0
        public var completed = 0
        public var succeeded = 0
        public var failed = 0
        public var timedOut = 0
        public var cancelled = 0
        public var rejected = 0
        public var requeued = 0
        public var retried = 0
        public var duplicatesDropped = 0
        public var badMessages = 0
        /// Transitions the task state machine refused (a bug or a confused peer; 0 in a healthy run).
        public var illegalTransitions = 0

        enum CodingKeys: String, CodingKey {
            case submitted, completed, succeeded, failed, cancelled, rejected, requeued, retried
            case timedOut = "timed_out"
            case duplicatesDropped = "duplicates_dropped"
            case badMessages = "bad_messages"
            case illegalTransitions = "illegal_transitions"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            // Absent counters (an older broker) read as 0.
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func count(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
            submitted = try count(.submitted)
            completed = try count(.completed)
            succeeded = try count(.succeeded)
            failed = try count(.failed)
            timedOut = try count(.timedOut)
            cancelled = try count(.cancelled)
            rejected = try count(.rejected)
            requeued = try count(.requeued)
            retried = try count(.retried)
            duplicatesDropped = try count(.duplicatesDropped)
            badMessages = try count(.badMessages)
            illegalTransitions = try count(.illegalTransitions)
        }
    }

    /// A dead letter as listed (its args stay in the broker).
    public struct DeadLetter: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var attempts: UInt32
        public var reason: String

        public init(id: String, name: String, attempts: UInt32, reason: String) {
            self.id = id
            self.name = name
            self.attempts = attempts
            self.reason = reason
        }
    }

    /// Tasks waiting, per name.
    public var queued: [String: Int]
    public var queuedTotal: Int
    /// Tasks dispatched and not yet answered, reserved ones included.
    public var running: Int
    /// Of ``running``, the tasks waiting in a consumer's prefetch buffer (every thread of that
    /// consumer busy with earlier ones); absent from older brokers.
    public var reserved: Int?
    /// Seconds the oldest waiting task of each name has waited since it was accepted (what an
    /// autoscaler wants beside the queue length); absent from older brokers.
    public var oldestQueuedAge: [String: Double]?
    /// Tasks finished per second over the last 10 s and the last 60 s (or since the start, when
    /// shorter), and seconds since the broker started; absent from older brokers.
    public var completedRate10s: Double?
    public var completedRate60s: Double?
    public var uptime: Double?
    public var consumers: [Consumer]
    /// Producers heard from within the result retention.
    public var producers: Int
    public var resultsKept: Int
    public var totals: Totals
    /// The newest 100 dead letters.
    public var deadLetters: [DeadLetter]
    public var deadLetterTotal: Int
    /// The protocol tag the broker speaks by default (`CVY3`); absent from older brokers.
    public var protocolVersion: String?
    /// Tasks waiting out a retry backoff (counted by `--max-queued` with the queued ones); absent
    /// from older brokers.
    public var delayed: Int?
    /// Tasks waiting for their `not_before` time (counted by `--max-queued` too); absent from
    /// older brokers.
    public var scheduled: Int?
    /// Uniqueness keys held (`unique_key`: by tasks not finished, or finished within their TTL);
    /// absent from older brokers.
    public var uniqueKeys: Int?
    /// Identities and connections (``Security``); absent from older brokers.
    public var security: Security?
    /// The broker thread's longest loop turn since the previous `STATS`, and since it started
    /// (ms): how long one peer's messages held up everyone else. Absent from older brokers.
    public var longestTurnMilliseconds: Double?
    public var longestTurnEverMilliseconds: Double?
    /// The durable journal's figures; absent from a broker run `--in-memory` (and older ones).
    public var journal: Journal?
    /// Bytes sent to producers that they have not reported read (READ), in all; messages dropped
    /// for connections past their budget since the start; bytes of results kept. Absent from
    /// older brokers.
    public var unreadBytes: Int?
    public var repliesDropped: Int?
    public var resultBytes: Int?
    /// Each task name's figures: queued, on a thread, reserved, and how its tasks ended since
    /// the broker started (BrokerStatistics+Names.swift); absent from older brokers.
    public var names: [String: NameFigures]?
    /// The latency (acceptance to result) of every task that ran to a result since the broker
    /// started; absent from older brokers.
    public var latency: LatencyHistogram?
    /// Task names paused (`conveyor pause`), sorted: their tasks are accepted and queue (counted
    /// in ``queued``) but are not dispatched until resumed. Empty when none; absent from older
    /// brokers.
    public var paused: [String]?
    /// Task names with global limits (`conveyor limit`), sorted by name, with where each stands;
    /// absent from older brokers.
    public var limits: [LimitFigures]?
    /// Periodic schedules the broker holds (`conveyor schedule list` shows them); absent from
    /// older brokers.
    public var schedules: Int?

    enum CodingKeys: String, CodingKey {
        case queued, running, reserved, consumers, producers, totals
        case oldestQueuedAge = "oldest_queued_age_s"
        case completedRate10s = "completed_per_s_10s"
        case completedRate60s = "completed_per_s_60s"
        case uptime = "uptime_s"
        case queuedTotal = "queued_total"
        case resultsKept = "results_kept"
        case deadLetters = "dead_letters"
        case deadLetterTotal = "dead_letter_total"
        case protocolVersion = "protocol"
        case journal, delayed, security, paused, scheduled, limits, schedules
        case uniqueKeys = "unique_keys"
        case longestTurnMilliseconds = "longest_turn_ms"
        case longestTurnEverMilliseconds = "longest_turn_ever_ms"
        case unreadBytes = "unread_bytes"
        case repliesDropped = "replies_dropped"
        case resultBytes = "result_bytes"
        case names, latency
    }

    public init(queued: [String: Int], queuedTotal: Int, running: Int, consumers: [Consumer], producers: Int,
                resultsKept: Int, totals: Totals, deadLetters: [DeadLetter], deadLetterTotal: Int,
                protocolVersion: String? = ProtocolTag.currentText, journal: Journal? = nil, delayed: Int? = nil,
                longestTurnMilliseconds: Double? = nil, longestTurnEverMilliseconds: Double? = nil) {
        self.longestTurnMilliseconds = longestTurnMilliseconds
        self.longestTurnEverMilliseconds = longestTurnEverMilliseconds
        self.queued = queued
        self.queuedTotal = queuedTotal
        self.running = running
        self.consumers = consumers
        self.producers = producers
        self.resultsKept = resultsKept
        self.totals = totals
        self.deadLetters = deadLetters
        self.deadLetterTotal = deadLetterTotal
        self.protocolVersion = protocolVersion
        self.journal = journal
        self.delayed = delayed
    }
}
