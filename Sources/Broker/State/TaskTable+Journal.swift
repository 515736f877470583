import ConveyorJournal
import ConveyorProtocol
import ConveyorSystem

extension TaskTable {
    // MARK: Recording

    /// An `accepted` record: everything needed to run the task again after a restart.
    mutating func journalAccepted(_ task: TaskRecord) {
        journal.accepted(id: task.id, name: task.name, args: task.args, options: task.options, producer: task.producer,
                         sequence: task.sequence, deadline: task.deadline)
    }

    /// Takes dead letters away for good (all, or those with `id`); returns how many.
    mutating func purgeDeadLetters(id: String) -> Int {
        let count = deadLetters.take(id: id).count
        if journaling, count > 0 { journal.deadLettersTaken(id: id) }
        return count
    }

    // MARK: Restoring

    /// Rebuilds the table from a journal's replay, before any peer is heard from: queued tasks
    /// back in their queues in arrival order, tasks that were running back at the front (their
    /// attempt counted, as for a lost consumer), delayed ones waiting out their backoff, kept
    /// results and dead letters as they were, the paused names still paused, and every id known
    /// again (a resubmission after the restart gets the same task or its result). Deadlines and
    /// result retention go on from where they were: time while the broker was down counts.
    mutating func restore(_ state: RecoveredState) {
        var running: [TaskRecord] = []
        var finished: [(task: TaskRecord, at: UInt64)] = []
        for entry in state.tasks.values.sorted(by: { $0.sequence < $1.sequence }) {
            if isOrphanDelivery(entry) { continue }
            let done = entry.state == .done
            let task = TaskRecord(id: entry.id, name: entry.name, args: entry.args, options: entry.options,
                                  producer: entry.producer, owner: done ? finishedAccount : shares.producer(entry.producer),
                                  nameShare: done ? finishedAccount : shares.name(entry.name),
                                  sequence: entry.sequence, deadline: entry.deadline)
            task.attempts = entry.attempts
            task.notBefore = entry.notBefore
            records[entry.id] = task
            if !done {
                live.append(task)
                restoreHeldBytes(task.args.count)
                Shares.adopt(task, held: true)
                if entry.options.cancelOnDisconnect { disconnectCancels[entry.producer, default: []].insert(entry.id) }
            }
            switch entry.state {
            case .queued:
                queue.append(task)
                timers.addDeadline(task)
            case .running:
                running.append(task)
                timers.addDeadline(task)
            case .delayed:
                move(task, to: .delayed)
                timers.addDeadline(task)
                timers.addNotBefore(task)
            case .done:
                guard let result = entry.result else {
                    records[entry.id] = nil
                    continue
                }
                task.move(to: .done)
                task.args = []
                task.result = StoredResult(status: result.status, body: result.body, info: result.info)
                finished.append((task, result.finishedAt))
            }
        }
        // Newest first, each to the front: the oldest runs first.
        for task in running.reversed() { queue.prepend(task) }
        for (task, at) in finished.sorted(by: { $0.at < $1.at }) {
            if let result = task.result, RecentFailures.counts(result.status) {
                failures.add(id: task.id, name: task.name, status: result.status, body: result.body, info: result.info,
                             at: at, argsBytes: nil)
            }
            let size = task.result.map { $0.body.count + $0.info.count } ?? 0
            for old in results.insert(task, finishedAt: at, size: size) { evict(old) }
        }
        for letter in state.deadLetters {
            deadLetters.add(DeadLetter(id: letter.id, name: letter.name, attempts: letter.attempts, reason: letter.reason,
                                       args: letter.args, options: letter.options, producer: letter.producer))
        }
        restoreUniqueKeys(state)
        paused = state.paused
        for name in paused { nameLimits.block(name) }
        restoreLimits(state.limits, now: wallClockNanoseconds())
        restoreSequence(after: state.lastSequence)
    }
}
