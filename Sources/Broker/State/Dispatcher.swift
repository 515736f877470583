import ConveyorProtocol

/// A consumer process connected to the backend.
///
/// Its credit (``credit``) is its announced capacity less the tasks it holds (``inFlight``).
/// ``inFlight`` changes only inside ``TaskTable``, in the same transitions that move a task into
/// or out of `running` on this consumer, so the two can never disagree.
final class ConsumerRecord {
    /// The consumer's routing id.
    let key: [UInt8]
    var info: ReadyInfo
    var names: Set<String>
    /// Ids of tasks dispatched to it and not yet answered. Written by ``TaskTable`` only.
    var inFlight: Set<String> = []
    /// When it was last heard from, and last sent anything (monotonic ns).
    var lastSeen: UInt64
    var lastSent: UInt64 = 0
    /// Final results it sent that were used.
    var completed = 0
    /// How long a lease on a task dispatched to it lasts (ns): the broker's lease, or three of
    /// the consumer's announced heartbeat intervals if that is longer.
    var leaseNanos: UInt64 = 30_000_000_000
    /// Leases that ran out on it, in all and since it last answered a task. Three in a row with
    /// no answer between quarantine it: no more dispatches until it answers one.
    var leasesExpired = 0
    var expiredSinceAnswer = 0
    var isQuarantined: Bool { expiredSinceAnswer >= 3 }
    /// Set by the socket outbox when a DISPATCH to it could not be sent: it gets no more work and
    /// is removed at the end of the message being handled.
    var unreachable = false
    /// The protocol version of its last message: what the broker writes to it in.
    var version: ProtocolVersion = .current
    /// Who it is (the engine sets it at READY; see `identity`) and the number ZAP gave its
    /// connection (0 without client authentication).
    var access: PeerAccess?
    var connection: UInt64 = 0
    /// DISPATCH groups gathered during this loop turn by the socket outbox, sent at its end or
    /// once a batch is full. Kept here so that a dispatch costs no hashing of the routing id.
    var pending: OutgoingMessage?
    var pendingGroups = 0

    init(key: [UInt8], info: ReadyInfo, now: UInt64) {
        self.key = key
        self.info = info
        self.names = Set(info.tasks)
        self.lastSeen = now
    }

    /// Tasks it may still be sent: its announced capacity, believed only as far as it has shown
    /// it drains work (``Limits/initialCredit`` plus the tasks it answered), less what it holds.
    /// Negative after it lowered its capacity below what it holds. A consumer that announces
    /// 100,000 threads and never answers gets 64 tasks, not all of them.
    var credit: Int {
        isQuarantined ? -inFlight.count : min(info.capacity, Limits.initialCredit &+ completed) - inFlight.count
    }

    /// How long the consumer may stay silent: `liveness` intervals of the slower of the two
    /// heartbeat intervals, the broker's and the one the consumer announced in READY.
    func livenessNanos(broker interval: UInt64, liveness: Int) -> UInt64 {
        let announced = UInt64(min(max(0, info.heartbeatMilliseconds ?? 0), 60_000)) * 1_000_000
        return max(interval, announced) * UInt64(liveness)
    }
}

/// The consumers the broker knows, indexed by the task names they serve, and the rule that picks
/// where a task goes. No sockets, no clock: the engine passes times in.
struct Dispatcher {
    private(set) var consumers: [[UInt8]: ConsumerRecord] = [:]
    private var byName: [String: [ConsumerRecord]] = [:]

    subscript(key: [UInt8]) -> ConsumerRecord? { consumers[key] }

    /// Whether `consumer` is the one registered under its key (not a record already removed).
    func isRegistered(_ consumer: ConsumerRecord) -> Bool { consumers[consumer.key] === consumer }

    /// Whether any consumer serves `name` now.
    func isServed(_ name: String) -> Bool { byName[name] != nil }

    /// The consumers serving `name` now.
    func serving(_ name: String) -> [ConsumerRecord] { byName[name] ?? [] }

    /// The task names some connected consumer serves, sorted.
    var servedNames: [String] { byName.keys.sorted() }

    /// Tasks held by all consumers.
    var runningCount: Int { consumers.values.reduce(0) { $0 + $1.inFlight.count } }

    mutating func register(_ consumer: ConsumerRecord) {
        consumers[consumer.key] = consumer
        index(consumer)
    }

    /// A known consumer's new announcement (capacity, served names).
    mutating func update(_ consumer: ConsumerRecord, info: ReadyInfo) {
        unindex(consumer)
        consumer.info = info
        consumer.names = Set(info.tasks)
        index(consumer)
    }

    /// Forgets `consumer`; returns whether it was registered. Its held tasks are the caller's to
    /// release (``TaskTable/remove(_:reason:now:)``).
    mutating func unregister(_ consumer: ConsumerRecord) -> Bool {
        guard isRegistered(consumer) else { return false }
        consumers[consumer.key] = nil
        unindex(consumer)
        return true
    }

    private mutating func index(_ consumer: ConsumerRecord) {
        for name in consumer.names { byName[name, default: []].append(consumer) }
    }

    private mutating func unindex(_ consumer: ConsumerRecord) {
        for name in consumer.names {
            byName[name]?.removeAll { $0 === consumer }
            if byName[name]?.isEmpty == true { byName[name] = nil }
        }
    }

    /// Where a task for `name` starts soonest, among the consumers serving it that have credit:
    /// the one with the most idle threads; if none has an idle thread, the one with the fewest
    /// tasks waiting per thread (ties: the most free credit). Not simply the most free credit: a
    /// consumer whose automatic prefetch has grown would draw every task, and the others would
    /// never run enough to measure their own pace.
    func leastLoaded(serving name: String, avoiding avoided: ConsumerRecord? = nil) -> ConsumerRecord? {
        guard let candidates = byName[name] else { return nil }
        var best: ConsumerRecord?
        for consumer in candidates where consumer.credit > 0 && !consumer.unreachable && consumer !== avoided {
            if let current = best {
                if Self.startsSooner(consumer, than: current) { best = consumer }
            } else {
                best = consumer
            }
        }
        return best
    }

    private static func startsSooner(_ a: ConsumerRecord, than b: ConsumerRecord) -> Bool {
        let threadsA = max(1, a.info.threads), threadsB = max(1, b.info.threads)
        let idleA = threadsA - a.inFlight.count, idleB = threadsB - b.inFlight.count
        if idleA > 0 || idleB > 0 {
            if idleA != idleB { return idleA > idleB }
        } else {
            // Waiting per thread, compared without division: -idleA / threadsA < -idleB / threadsB.
            let left = -idleA * threadsB, right = -idleB * threadsA
            if left != right { return left < right }
        }
        return a.credit > b.credit
    }

    /// Consumers silent past their liveness bound at `now` (monotonic ns).
    func silent(now: UInt64, heartbeat: UInt64, liveness: Int) -> [ConsumerRecord] {
        consumers.values.filter { now &- $0.lastSeen > $0.livenessNanos(broker: heartbeat, liveness: liveness) }
    }
}
