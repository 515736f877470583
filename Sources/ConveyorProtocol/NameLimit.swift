/// Global limits on one task name, enforced by the broker across every consumer (`LIMIT`,
/// docs/PROTOCOL.md §4.8.5): a token bucket on dispatches (`rate` per second, `burst` at once),
/// a bound on tasks dispatched and not finished (`concurrency`), and a weight in the fair
/// dispatch between names. A field left out is no limit (a weight of 1).
public struct NameLimit: Sendable, Equatable, Codable {
    /// Dispatches per second at most, on average (0.001-1,000,000).
    public var rate: Double?
    /// Dispatches at once after a quiet spell: the bucket's size (1-1,000,000; by default one
    /// second's worth of the rate, at least 1). Only with a `rate`.
    public var burst: Int?
    /// Tasks of the name dispatched and not finished (running, or reserved in a consumer's
    /// prefetch buffer) at most, across every consumer (1-1,000,000).
    public var concurrency: Int?
    /// The name's share of dispatches against other names of the same priority that wait at the
    /// same time (1-1,000; 1 when absent): weight 2 gets twice a weight-1 name's dispatches.
    public var weight: Int?

    public init(rate: Double? = nil, burst: Int? = nil, concurrency: Int? = nil, weight: Int? = nil) {
        self.rate = rate
        self.burst = burst
        self.concurrency = concurrency
        self.weight = weight
    }

    public static let maxRate = 1_000_000.0
    public static let minRate = 0.001
    public static let maxCount = 1_000_000
    public static let maxWeight = 1_000
    /// Names with a limit, at most.
    public static let maxNames = 10_000

    /// Whether nothing is limited (a weight of 1 is no limit).
    public var isEmpty: Bool { rate == nil && concurrency == nil && (weight ?? 1) == 1 }

    /// The bucket's size: the burst given, else a second's worth of the rate (at least 1).
    public var bucketSize: Int { burst ?? max(1, Int(min(rate ?? 1, NameLimit.maxRate).rounded(.up))) }

    /// Why these limits cannot be set, or `nil`.
    public var problem: String? {
        if let rate, !(rate >= Self.minRate && rate <= Self.maxRate) {
            return "rate must be \(Self.minRate)-\(Int(Self.maxRate)) dispatches per second, not \(rate)"
        }
        if let burst {
            if rate == nil { return "burst needs a rate: give --rate N/s too" }
            if burst < 1 || burst > Self.maxCount { return "burst must be 1-\(Self.maxCount), not \(burst)" }
        }
        if let concurrency, concurrency < 1 || concurrency > Self.maxCount {
            return "concurrency must be 1-\(Self.maxCount), not \(concurrency) (to stop a name, use `conveyor pause`)"
        }
        if let weight, weight < 1 || weight > Self.maxWeight { return "weight must be 1-\(Self.maxWeight), not \(weight)" }
        return nil
    }

    /// These limits with the fields `other` gives replaced (a `LIMIT` changes only what it names).
    public func merging(_ other: NameLimit) -> NameLimit {
        var merged = self
        if let rate = other.rate {
            merged.rate = rate
            merged.burst = other.burst
        }
        if let burst = other.burst { merged.burst = burst }
        if let concurrency = other.concurrency { merged.concurrency = concurrency }
        if let weight = other.weight { merged.weight = weight }
        return merged
    }

    /// `rate=50/s burst=10 concurrency=2 weight=3`, or `none`.
    public var summary: String {
        var parts: [String] = []
        if let rate { parts.append("rate=\(Self.format(rate))/s burst=\(bucketSize)") }
        if let concurrency { parts.append("concurrency=\(concurrency)") }
        if let weight, weight != 1 { parts.append("weight=\(weight)") }
        return parts.isEmpty ? "none" : parts.joined(separator: " ")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// A `LIMIT` request's body: the name and the limits to set (the fields given replace those
/// set before), or `clear` to remove every limit of the name.
public struct LimitRequest: Sendable, Equatable, Codable {
    public var name: String
    public var rate: Double?
    public var burst: Int?
    public var concurrency: Int?
    public var weight: Int?
    public var clear: Bool?

    public init(name: String, limit: NameLimit = NameLimit(), clear: Bool = false) {
        self.name = name
        self.rate = limit.rate
        self.burst = limit.burst
        self.concurrency = limit.concurrency
        self.weight = limit.weight
        self.clear = clear ? true : nil
    }

    public var limit: NameLimit { NameLimit(rate: rate, burst: burst, concurrency: concurrency, weight: weight) }
}

/// A limited name as `STATS` and `LIMIT_REPLY` show it: its limits and where it stands.
public struct LimitFigures: Sendable, Equatable, Codable {
    public var name: String
    public var limit: NameLimit
    /// Tasks of the name dispatched and not finished, across every consumer.
    public var running: Int
    /// Tokens in the bucket now (with a rate), rounded down.
    public var tokens: Int?
    /// Whether dispatch of the name waits on a limit now, and which: `rate` or `concurrency`.
    public var heldBy: String?
    /// Times a dispatch of the name waited for a token or a free slot since the limit was set.
    public var throttled: Int

    public init(name: String, limit: NameLimit, running: Int, tokens: Int?, heldBy: String?, throttled: Int) {
        self.name = name
        self.limit = limit
        self.running = running
        self.tokens = tokens
        self.heldBy = heldBy
        self.throttled = throttled
    }

    enum CodingKeys: String, CodingKey {
        case name, limit, running, tokens, throttled
        case heldBy = "held_by"
    }
}
