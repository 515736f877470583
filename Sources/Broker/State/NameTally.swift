import ConveyorProtocol

/// How tasks ended, by name, and how long those that ran to a result took from acceptance: what
/// `STATS` reports as `names` and `latency` (the dashboard's table and latency chart), counted
/// whether metrics are on or not. Counted at ``TaskTable/finish(_:status:body:info:now:)``, the
/// one place every task ends, since the broker started (not restored from the journal).
///
/// Cost: one dictionary lookup and a few adds per finished task. Names are bounded: past
/// ``maxNames`` distinct names, further ones are counted under ``otherName``.
struct NameTally {
    static let maxNames = 1_000
    static let otherName = "(other)"

    private(set) var byName: [String: BrokerStatistics.NameFigures] = [:]
    /// Tasks by latency: bucket 0 under 1 µs, bucket i from 2^(i-1) up to 2^i µs (the last one
    /// takes everything longer).
    private(set) var latency = [Int](repeating: 0, count: BrokerStatistics.LatencyHistogram.buckets)

    mutating func finished(name: String, status: TaskStatus, latencyNanoseconds: UInt64) {
        let key = byName[name] != nil || byName.count < Self.maxNames ? name : Self.otherName
        byName[key, default: BrokerStatistics.NameFigures()].count(status)
        guard status == .ok || status == .error else { return }
        latency[BrokerStatistics.LatencyHistogram.bucket(nanoseconds: latencyNanoseconds)] += 1
    }
}

extension TaskTable {
    /// Every name with tasks queued, held by a consumer or finished since the start, with its
    /// figures (for `STATS`).
    func nameFigures(queued: [String: Int], held: (running: [String: Int], reserved: [String: Int])) -> [String: BrokerStatistics.NameFigures] {
        var figures = nameTally.byName
        for (name, count) in queued { figures[name, default: .init()].queued = count }
        for (name, count) in held.running { figures[name, default: .init()].running = count }
        for (name, count) in held.reserved { figures[name, default: .init()].reserved = count }
        return figures
    }
}
