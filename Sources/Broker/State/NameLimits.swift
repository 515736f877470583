import ConveyorProtocol

/// Where one name with a rate or concurrency limit stands. A class, so that a dispatch finds it
/// with one hash and changes it in place.
final class NameGate {
    var limit: NameLimit
    /// Tasks of the name dispatched and not finished (state `running`: on a thread, or reserved
    /// in a prefetch buffer), across every consumer.
    var running = 0
    /// The token bucket (with a rate): tokens now, as of `refilledAt` (wall-clock ns).
    var tokens: Double
    var refilledAt: UInt64
    /// Which limit holds the name back now, if one does.
    var heldBy: Hold?
    /// Times the name was held back since the limit was set.
    var throttled = 0

    enum Hold: String {
        case rate, concurrency
    }

    init(limit: NameLimit, now: UInt64) {
        self.limit = limit
        self.tokens = Double(limit.bucketSize)
        self.refilledAt = now
    }

    /// Tokens earned since the last refill, up to the bucket's size.
    func refill(now: UInt64) {
        guard let rate = limit.rate, now > refilledAt else { return }
        tokens = min(Double(limit.bucketSize), tokens + Double(now - refilledAt) / 1e9 * rate)
        refilledAt = now
    }

    /// What holds the name back at `now`, if anything: its concurrency bound reached, or fewer
    /// than one token in its bucket.
    func hold(now: UInt64) -> Hold? {
        if let concurrency = limit.concurrency, running >= concurrency { return .concurrency }
        if limit.rate != nil {
            refill(now: now)
            if tokens < 1 { return .rate }
        }
        return nil
    }

    /// When the bucket has a token again (wall-clock ns), for a name held by its rate.
    func tokenDue() -> UInt64 {
        guard let rate = limit.rate, tokens < 1 else { return refilledAt }
        return refilledAt &+ UInt64(((1 - tokens) / rate * 1e9).rounded(.up))
    }
}

/// The task names whose dispatch is held back, and why: paused ones (TaskTable+Pause.swift) and
/// those at a global limit (TaskTable+Limits.swift). The table's dispatch looks only at
/// ``blocked``: while it is empty (no pause, no limit reached), a dispatch costs one check more.
struct NameLimits {
    /// Names not dispatched now: paused, or held by their rate or concurrency limit.
    private(set) var blocked: Set<String> = []
    /// Changes of ``blocked``: a refill that hands out several tasks looks again after one.
    private(set) var changes = 0
    /// Every name's limits as set (weights included).
    var limits: [String: NameLimit] = [:]
    /// Names with a rate or concurrency limit.
    var gates: [String: NameGate] = [:]
    /// Names a finished task unblocked, whose waiting tasks go out at the end of the message
    /// (``TaskTable/settleLimits(now:)``): the table cannot dispatch in the middle of a move.
    var reopened: [String] = []
    /// When the next name held by its rate has a token again (wall-clock ns; `.max`: none).
    var nextTokenDue: UInt64 = .max

    mutating func block(_ name: String) {
        if blocked.insert(name).inserted { changes &+= 1 }
    }

    mutating func unblock(_ name: String) {
        if blocked.remove(name) != nil { changes &+= 1 }
    }
}
