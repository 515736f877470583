import ConveyorProtocol
import Foundation
import ZeroMQ

/// What a DONE group did to its task.
enum DoneOutcome: Equatable {
    /// The task ended (finish, fail) or went on (retry, requeue).
    case applied(TaskTransition)
    /// No such task, already done, or not this sender's to answer: dropped.
    case duplicate
}

extension TaskTable {
    // MARK: A consumer's answer

    /// A DONE group from `sender`: `consumer` is its registered record, or `nil` when the broker
    /// does not know it (declared dead, or from before a restart: its final results still count).
    ///
    /// A final result (`ok`, `error`) is taken from any consumer the task was dispatched to while
    /// the task is not done, so a late result from a consumer wrongly declared dead saves a rerun;
    /// `retry` and `requeue` only from the consumer holding it.
    mutating func done(id: String, status: DoneStatus, body: Frame, info: Frame,
                       from consumer: ConsumerRecord?, sender: [UInt8], now: UInt64) -> DoneOutcome {
        // The consumer's thread is free again, whatever became of the task: credit comes back.
        var held = false
        if let consumer {
            #if DEBUG
            held = seededFaults.contains(.creditNotReturned) ? consumer.inFlight.contains(id)
                : consumer.inFlight.remove(id) != nil
            #else
            held = consumer.inFlight.remove(id) != nil
            #endif
            if held {
                consumer.completed += 1
                consumer.expiredSinceAnswer = 0
            }
        }
        guard let task = records[id], !task.isDone else { return .duplicate }
        let owned = consumer != nil && task.holder == sender
        guard owned || (status.isFinal && task.wasDispatched(to: sender)) else { return .duplicate }
        if task.isQueued { queue.remove(task) }
        switch status {
        case .requeue where revoking.remove(task.id) != nil:
            // Handed back after a REVOKE: the producer's cancel takes effect.
            move(task, to: .done)
            counted(.revoke)
            tally(.cancelled, task)
            finish(task, status: .cancelled, body: JSONText.errorBody(.cancelled, "cancelled while reserved by a consumer (it had not started)"), now: now)
            return .applied(.revoke)
        case .requeue:
            move(task, to: .queued)
            if task.attempts > 0 { task.attempts -= 1 }
            counted(.requeue)
            if journaling { journal.queued(id: task.id, attempts: task.attempts) }
            tally(.requeued, task)
            route(task, atFront: true, now: now)
            return .applied(.requeue)
        case .retry where task.attempts < task.options.maxAttempts:
            let backoff = Self.retryBackoff(task)
            move(task, to: .delayed)
            // A backoff never outlasts the task's own deadline (it then times out, as it must).
            task.notBefore = min(now &+ backoff, task.deadline)
            timers.addNotBefore(task)
            counted(.retry)
            if journaling { journal.delayed(id: task.id, attempts: task.attempts, notBefore: task.notBefore) }
            tally(.retried, task)
            return .applied(.retry)
        case .retry:
            move(task, to: .done)
            counted(.fail)
            tally(.failed, task)
            if task.options.maxAttempts > 1 {
                let last = (try? JSONDecoder().decode(ErrorText.self, from: Data(body.bytes)))?.error ?? "handler failed"
                addDeadLetter(task, reason: "failed \(task.attempts) attempts; last error: \(last)", now: now)
            }
            finish(task, status: .error, body: body.bytes, info: info.bytes, now: now)
            return .applied(.fail)
        case .ok, .error:
            move(task, to: .done)
            let transition: TaskTransition = status == .ok ? .finish : .fail
            counted(transition)
            tally(status == .ok ? .succeeded : .failed, task)
            finish(task, status: status == .ok ? .ok : .error, body: body.bytes, info: info.bytes, now: now)
            return .applied(transition)
        }
    }

    // MARK: A producer's cancel

    /// queued or delayed → done (cancelled). A running task is not cancelled (as with
    /// `concurrent.futures`); the outcome says where it stands instead.
    mutating func cancel(_ id: String, now: UInt64, reason: String = "cancelled while queued") -> CancelOutcome {
        guard let task = records[id] else { return .unknown }
        switch task.state {
        case .queued, .delayed:
            if task.isQueued { queue.remove(task) }
            move(task, to: .done)
            counted(.cancel)
            tally(.cancelled, task)
            finish(task, status: .cancelled, body: JSONText.errorBody(.cancelled, reason), now: now)
            return .cancelled
        case .running:
            return .running
        case .done:
            return .done
        }
    }

    /// `PURGE`: cancels every waiting task (queued, or waiting out a backoff) named `name`, in
    /// arrival order, each answered `cancelled`; running ones run on. Returns how many. Scans
    /// every record: an operator's command, not a hot path.
    mutating func purge(name: String, now: UInt64) -> Int {
        let waiting = records.values.filter { $0.name == name && $0.isHeld }
            .sorted { $0.sequence < $1.sequence }
        let reason = "purged: every waiting task named '\(name)' was cancelled (conveyor purge)"
        for task in waiting { _ = cancel(task.id, now: now, reason: reason) }
        return waiting.count
    }

    // MARK: Time

    /// Ends every task whose deadline is due at `now` (wall-clock ns). Dispatches nothing, so it
    /// goes first in a tick: nothing due is then sent on its way only to time out.
    mutating func expireDeadlines(at now: UInt64) {
        while let task = timers.nextDeadline(dueAt: now) {
            #if DEBUG
            if seededFaults.contains(.finishTwice), task.isDone, task.result != nil {
                finish(task, status: .timeout, body: JSONText.errorBody(.timeout, "seeded fault"), now: now)
                continue
            }
            #endif
            guard !task.isDone else { continue }
            expire(task, now: now)
        }
    }

    /// Queues (or dispatches) every delayed task whose backoff ends, or whose `not_before` time
    /// comes, by `now`: a retry at the front of its queue, a scheduled task (no attempt yet) at
    /// the back, as a task accepted then would be.
    mutating func promoteBackoffs(at now: UInt64) {
        while let (task, at) = timers.nextNotBefore(dueAt: now) {
            guard task.isDelayed, task.notBefore == at else { continue }
            move(task, to: .queued)
            counted(.promote)
            if journaling { journal.queued(id: task.id, attempts: task.attempts) }
            route(task, atFront: task.attempts > 0, now: now)
        }
    }

    /// Lets results past their retention go, and compacts the timers and the live tasks' order.
    mutating func expireResults(at now: UInt64) {
        for old in results.expire(now: now) { evict(old) }
        timers.compactIfNeeded(active: queue.count + runningCount + timers.delayedEntries)
        unique.expire(now: now)
        live.trim()
        live.compactIfNeeded(live: heldCount + runningCount)
    }

    /// queued, delayed or running → done (timeout).
    private mutating func expire(_ task: TaskRecord, now: UInt64) {
        let seconds = Double(task.options.timeoutMilliseconds) / 1000
        let message: String
        switch task.state {
        case .queued, .delayed:
            if task.isQueued { queue.remove(task) }
            message = consumers.isServed(task.name)
                ? "timed out after \(seconds) s in the queue"
                : "timed out after \(seconds) s in the queue: no consumer serves '\(task.name)'"
        case .running:
            // Its consumer keeps the credit until it answers: its thread is still busy.
            message = "timed out after \(seconds) s while running (attempt \(task.attempts))"
        case .done:
            return refuse(.expire)
        }
        move(task, to: .done)
        counted(.expire)
        tally(.timedOut, task)
        finish(task, status: .timeout, body: JSONText.errorBody(.timeout, message), now: now)
    }

    // MARK: Dead letters

    /// Submits dead letters again (all, or those with `id`): each a new record, queued, unless a
    /// task with its id is live again. Returns how many were revived.
    mutating func revive(id: String, now: UInt64) -> Int {
        var count = 0
        let letters = deadLetters.take(id: id)
        if journaling, !letters.isEmpty { journal.deadLettersTaken(id: id) }
        for letter in letters {
            if let current = records[letter.id], !current.isDone { continue }
            let task = TaskRecord(id: letter.id, name: letter.name, args: letter.args, options: letter.options,
                                  producer: letter.producer, owner: shares.producer(letter.producer),
                                  nameShare: shares.name(letter.name), sequence: nextSequence(), now: now)
            records[letter.id] = task
            live.append(task)
            restoreHeldBytes(task.args.count)
            Shares.adopt(task, held: true)
            timers.addDeadline(task)
            counted(.revive)
            if journaling { journalAccepted(task) }
            tally(.requeued, task)
            route(task, atFront: false, now: now)
            count += 1
        }
        return count
    }
}

private struct ErrorText: Decodable { let error: String }

extension TaskTable {
    /// How long a retry waits: `retry_backoff_ms` doubled per attempt already made (at most 16
    /// doublings), then up to 25 % more, never less (docs/PROTOCOL.md §8.5). The extra part
    /// comes from an FNV-1a hash of the task id and the attempt: tasks that fail together (a
    /// receiver down, a database restarting) do not all come back at the same moment, and the
    /// same task and attempt always get the same wait.
    static func retryBackoff(_ task: TaskRecord) -> UInt64 {
        let doublings = UInt64(min(max(task.attempts, 1) - 1, 16))
        let backoff = min(UInt64(task.options.retryBackoffMilliseconds) &* 1_000_000, 1 << 46) << doublings
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in task.id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ UInt64(task.attempts)) &* 0x100_0000_01b3
        let fraction = Double(hash >> 11) / Double(1 << 53)
        return backoff + UInt64(Double(backoff) * 0.25 * fraction)
    }
}
