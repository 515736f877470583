import ConveyorProtocol

extension TaskTable {
    /// The lease on tasks dispatched to a consumer that announced `info`: the broker's lease, or
    /// three of the consumer's heartbeat intervals if that is longer (it renews once an interval).
    func lease(for info: ReadyInfo) -> UInt64 {
        let heartbeat = UInt64(min(max(0, info.heartbeatMilliseconds ?? 1_000), 60_000)) * 1_000_000
        return max(leaseNanos, 3 * heartbeat)
    }

    /// `RENEW` from `consumer`: the leases of the tasks it holds (of `ids`) run on from `now`.
    /// Ids of tasks it does not hold are ignored.
    mutating func renew(_ ids: some Sequence<String>, from consumer: ConsumerRecord, now: UInt64) {
        for id in ids {
            guard let task = records[id], task.holder == consumer.key else { continue }
            task.leaseExpiry = now &+ consumer.leaseNanos
        }
    }

    /// Takes back every task whose lease ran out by `now` (wall-clock ns): running → queued (or,
    /// lost too often, → done as `exhaust`), the attempt counted, given to another consumer. The
    /// consumer it was on keeps the task in its holdings (its thread is presumably still busy)
    /// until it answers, and a final result it sends later is still taken. Looked at once a second.
    mutating func reclaimExpiredLeases(at now: UInt64) {
        guard now &- leasesCheckedAt >= 1_000_000_000 else { return }
        leasesCheckedAt = now
        var expired: [(TaskRecord, ConsumerRecord)] = []
        for consumer in consumers.consumers.values {
            for id in consumer.inFlight {
                guard let task = records[id], task.holder == consumer.key, task.leaseExpiry <= now else { continue }
                expired.append((task, consumer))
            }
        }
        // Oldest first, each to the front: newest first.
        for (task, consumer) in expired.sorted(by: { $0.0.sequence > $1.0.sequence }) {
            consumer.leasesExpired += 1
            consumer.expiredSinceAnswer += 1
            // Not back to the consumer that lost it, while it may still be running it.
            takeBack(task, as: .reclaim, reason: "lease ran out with no answer and no renewal", now: now, avoiding: consumer)
        }
    }
}
