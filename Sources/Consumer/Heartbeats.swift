/// The heartbeat half of a connection's liveness (docs/PROTOCOL.md §10): a HEARTBEAT goes out
/// when nothing else was sent for an interval, and the broker counts as gone after `liveness`
/// intervals without a word from it. Times are monotonic nanoseconds; the I/O thread owns it.
struct Heartbeats: Sendable {
    let interval: UInt64
    let liveness: Int
    private(set) var lastHeard: UInt64
    private(set) var lastSent: UInt64

    init(interval: Duration, liveness: Int, now: UInt64) {
        self.interval = max(interval.nanoseconds, 1)
        self.liveness = liveness
        lastHeard = now
        lastSent = now
    }

    /// A new connection: the broker gets a fresh allowance of silence.
    mutating func reset(now: UInt64) {
        lastHeard = now
        lastSent = now
    }

    mutating func heard(now: UInt64) { lastHeard = now }

    mutating func sent(now: UInt64) { lastSent = now }

    /// Whether a HEARTBEAT is due (nothing sent for an interval).
    func heartbeatDue(now: UInt64) -> Bool { now &- lastSent >= interval }

    /// Whether the broker has been silent for longer than `liveness` intervals.
    func brokerSilent(now: UInt64) -> Bool { now &- lastHeard > interval &* UInt64(liveness) }

    /// How long a poll may sleep and still send heartbeats in time: a quarter interval, at least 10 ms.
    var pollTimeoutMilliseconds: Int { max(10, Int(interval / 4_000_000)) }
}
