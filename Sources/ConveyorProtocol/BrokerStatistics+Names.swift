extension BrokerStatistics {
    /// One task name in `STATS`: its tasks now (queued, on a consumer's thread, in a prefetch
    /// buffer) and how they ended since the broker started.
    public struct NameFigures: Codable, Sendable, Equatable {
        public var queued = 0
        public var running = 0
        public var reserved = 0
        public var succeeded = 0
        /// Ended `error` (the handler threw, or the retries ran out).
        public var failed = 0
        public var timedOut = 0
        public var cancelled = 0

        public init() {}

        /// Every way a task ends that did not succeed.
        public var unsuccessful: Int { failed + timedOut + cancelled }

        public mutating func count(_ status: TaskStatus) {
            switch status {
            case .ok: succeeded += 1
            case .error, .rejected, .unrecognized: failed += 1
            case .timeout: timedOut += 1
            case .cancelled: cancelled += 1
            }
        }

        enum CodingKeys: String, CodingKey {
            case queued, running, reserved, succeeded, failed, cancelled
            case timedOut = "timed_out"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func read(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
            queued = try read(.queued)
            running = try read(.running)
            reserved = try read(.reserved)
            succeeded = try read(.succeeded)
            failed = try read(.failed)
            timedOut = try read(.timedOut)
            cancelled = try read(.cancelled)
        }
    }

    /// Tasks by latency in powers of two of microseconds: `counts[0]` under 1 µs, `counts[i]`
    /// from 2^(i-1) up to 2^i µs, the last bucket everything longer. Cumulative since the broker
    /// started: the difference of two snapshots is the latency of the tasks between them.
    public struct LatencyHistogram: Codable, Sendable, Equatable {
        public static let buckets = 40
        public var counts: [Int]

        public init(counts: [Int]) {
            var counts = counts
            while counts.last == 0 { counts.removeLast() }
            self.counts = counts
        }

        /// The bucket of a latency.
        public static func bucket(nanoseconds: UInt64) -> Int {
            let micros = nanoseconds / 1_000
            return micros == 0 ? 0 : min(buckets - 1, 64 - micros.leadingZeroBitCount)
        }

        public var total: Int { counts.reduce(0, +) }

        /// What was counted after `older`.
        public func subtracting(_ older: LatencyHistogram?) -> LatencyHistogram {
            guard let older else { return self }
            return LatencyHistogram(counts: counts.indices.map { counts[$0] - (older.counts.indices.contains($0) ? older.counts[$0] : 0) })
        }

        /// The `q` quantile in seconds (0 < q ≤ 1), interpolated inside its bucket; `nil`
        /// without tasks. Accurate to the bucket's width: within a factor of two.
        public func quantile(_ q: Double) -> Double? {
            let total = self.total
            guard total > 0 else { return nil }
            let rank = max(1, q * Double(total))
            var seen = 0.0
            for (index, count) in counts.enumerated() where count > 0 {
                if seen + Double(count) >= rank {
                    let low = index == 0 ? 0 : Double(1 << (index - 1))
                    let high = Double(1 << index)
                    return (low + (high - low) * (rank - seen) / Double(count)) / 1e6
                }
                seen += Double(count)
            }
            return Double(1 << (counts.count - 1)) / 1e6
        }
    }
}
