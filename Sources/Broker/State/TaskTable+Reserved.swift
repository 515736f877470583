import ConveyorProtocol

/// Reserved tasks: dispatched to a consumer that has every thread busy with earlier ones, so they
/// wait in its prefetch buffer. The broker does not hear when a consumer starts a task; it knows
/// that a consumer starts its tasks in the order they came (one first-in first-out queue in front
/// of its threads), so of the tasks a consumer holds, the `threads` dispatched first are running
/// and the others are reserved. A result on its way can make that a moment late, never wrong the
/// other way: a task counted running has started.
extension TaskTable {
    /// Whether `task` (running on a consumer) is reserved rather than on one of its threads.
    func isReserved(_ task: TaskRecord) -> Bool {
        guard case .running(let key) = task.state, let consumer = consumers[key] else { return false }
        let threads = max(1, consumer.info.threads)
        guard consumer.inFlight.count > threads else { return false }
        var earlier = 0
        for id in consumer.inFlight {
            guard let other = records[id], other.dispatchNumber < task.dispatchNumber else { continue }
            earlier += 1
            if earlier >= threads { return true }
        }
        return false
    }

    /// Tasks reserved in all: held beyond each consumer's threads.
    var reservedCount: Int {
        consumers.consumers.values.reduce(0) { $0 + max(0, $1.inFlight.count - max(1, $1.info.threads)) }
    }

    /// A producer's cancel of a running task: `nil` when it is reserved on a consumer that can
    /// give it back (capability `revoke`): the id is marked, and the caller sends REVOKE and
    /// answers once the consumer has. Otherwise what ``cancel(_:now:reason:)`` says.
    mutating func cancelOrRevoke(_ id: String, now: UInt64) -> (CancelOutcome?, ConsumerRecord?) {
        let outcome = cancel(id, now: now)
        guard outcome == .running, let task = records[id], case .running(let key) = task.state,
              let consumer = consumers[key], consumer.info.capabilities?.contains(Capability.revoke.rawValue) == true,
              isReserved(task) else { return (outcome, nil) }
        revoking.insert(id)
        return (nil, consumer)
    }

    /// A revoke that got no hand-back in time: the task started after all; it runs on as usual.
    mutating func revokeUnanswered(_ id: String) {
        revoking.remove(id)
    }
}

extension TaskTable {
    /// Tasks on consumers by name: those on a thread (`running`) and those in a prefetch buffer
    /// (`reserved`), as ``isReserved(_:)`` tells them apart. Walks every task held by a consumer
    /// (sorting only where a consumer holds more than its threads): for the metrics snapshot,
    /// once a second, not for the hot path.
    func heldByName() -> (running: [String: Int], reserved: [String: Int]) {
        var running: [String: Int] = [:]
        var reserved: [String: Int] = [:]
        for consumer in consumers.consumers.values {
            let threads = max(1, consumer.info.threads)
            var tasks = consumer.inFlight.compactMap { records[$0] }
            if tasks.count > threads { tasks.sort { $0.dispatchNumber < $1.dispatchNumber } }
            for (index, task) in tasks.enumerated() {
                if index < threads { running[task.name, default: 0] += 1 } else { reserved[task.name, default: 0] += 1 }
            }
        }
        return (running, reserved)
    }
}
