import ConveyorProtocol

/// Paused task names (`conveyor pause NAME`, `PAUSE`): the table dispatches no task of a paused
/// name, neither to a consumer's thread nor into its prefetch buffer. Submits of the name are
/// accepted and queue (against the same bounds as any waiting task); tasks put back in the queue
/// (a consumer lost, a lease run out, a backoff over, a hand-back) queue too. Tasks already
/// dispatched are left alone: running ones finish, and reserved ones (in a consumer's prefetch
/// buffer) run when their consumer gets to them. Resuming dispatches the queued tasks at once.
/// Other names are not affected. The paused set is journaled (`paused`/`resumed` records, and in
/// every snapshot), so it survives a restart.
extension TaskTable {
    /// What a pause or resume found and did.
    struct PauseOutcome: Equatable {
        /// Whether the name is paused now.
        var paused: Bool
        /// Whether this request changed that.
        var changed: Bool
        /// Tasks of the name waiting in the queue, and dispatched (running or reserved), after it.
        var queued: Int
        var running: Int
        /// Whether a connected consumer serves the name.
        var served: Bool
    }

    /// Whether `name` is paused.
    func isPaused(_ name: String) -> Bool { !paused.isEmpty && paused.contains(name) }

    /// Pauses `name` (a name no task has had yet may be paused too: its tasks will wait).
    mutating func pause(_ name: String) -> PauseOutcome {
        let changed = paused.insert(name).inserted
        nameLimits.block(name)
        if changed, journaling { journal.paused(name: name) }
        return pauseOutcome(name, changed: changed)
    }

    /// Resumes `name`: its queued tasks go to the consumers serving it that have credit, at once.
    mutating func resume(_ name: String, now: UInt64) -> PauseOutcome {
        let changed = paused.remove(name) != nil
        if changed {
            if journaling { journal.resumed(name: name) }
            // Unblocked unless a limit holds it; then its queued tasks go out at once.
            reevaluate(name, now: now)
        }
        return pauseOutcome(name, changed: changed)
    }

    private func pauseOutcome(_ name: String, changed: Bool) -> PauseOutcome {
        var running = 0
        for consumer in consumers.consumers.values {
            for id in consumer.inFlight {
                if let task = records[id], task.name == name, task.holder == consumer.key { running += 1 }
            }
        }
        return PauseOutcome(paused: isPaused(name), changed: changed, queued: queue.countsByName[name] ?? 0,
                            running: running, served: consumers.isServed(name))
    }

    /// The paused names, sorted (for `STATS`).
    var pausedNames: [String] { paused.sorted() }
}
