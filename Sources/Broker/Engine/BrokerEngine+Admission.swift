import ConveyorProtocol

extension BrokerEngine {
    /// Why a new task for `name` with `args` bytes from producer identity `key` is refused for the queue
    /// bounds, if it is: the broker's bounds (`--max-queued`, `--max-queued-bytes`), then the
    /// share of each that one task name and one producer identity may hold (`--queue-share`).
    /// The count bounds apply to a task that would wait (no consumer is free for it); the byte
    /// bounds to every task not done.
    func admission(name: String, args: Int, from key: [UInt8]) -> String? {
        let owned = table.shares.held(by: key), named = table.shares.held(named: name)
        let bytesShare = Shares.share(of: config.maxQueuedBytes, percent: config.queueShare)
        if table.heldArgsBytes + args > config.maxQueuedBytes {
            return "queue full: the broker holds \(table.heldArgsBytes) bytes of args for tasks not yet done, and this task's \(args) would pass --max-queued-bytes \(config.maxQueuedBytes)"
        }
        if named.bytes + args > bytesShare {
            return "queue share used: tasks named '\(name)' not yet done hold \(named.bytes) bytes of args, and this task's \(args) would pass that name's share (\(config.queueShare)% of --max-queued-bytes \(config.maxQueuedBytes)); \(servedNote(name))"
        }
        if owned.bytes + args > bytesShare {
            return "queue share used: this producer's tasks not yet done hold \(owned.bytes) bytes of args, and this task's \(args) would pass its share (\(config.queueShare)% of --max-queued-bytes \(config.maxQueuedBytes), so that other producers are served); wait for some of them to finish"
        }
        let share = Shares.share(of: config.maxQueued, percent: config.queueShare)
        // The count bounds only bind a task that would wait: asked last, as it looks at consumers.
        guard table.heldCount >= config.maxQueued || owned.tasks >= share || named.tasks >= share,
              table.wouldQueue(name) else { return nil }
        if table.heldCount >= config.maxQueued {
            return "queue full: \(table.queue.count) tasks queued and \(table.delayedCount) waiting to retry (--max-queued \(config.maxQueued))"
        }
        if named.tasks >= share {
            return "queue share used: \(named.tasks) tasks named '\(name)' are waiting, that name's share (\(config.queueShare)% of --max-queued \(config.maxQueued)); \(servedNote(name))"
        }
        if owned.tasks >= share {
            return "queue share used: this producer has \(owned.tasks) tasks waiting (queued or to retry), its share (\(config.queueShare)% of --max-queued \(config.maxQueued), so that other producers are served); wait for some of them to run"
        }
        return nil
    }

    /// Whether anyone serves `name`, for a refusal of its tasks.
    func servedNote(_ name: String) -> String {
        table.consumers.isServed(name) ? "its consumers are busy" : "no connected consumer serves '\(name)': start one"
    }
}
