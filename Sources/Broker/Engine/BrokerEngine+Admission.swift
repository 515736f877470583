import ConveyorProtocol
import Foundation
import ZeroMQ

extension BrokerEngine {
    /// Why a new task for `name` with `args` bytes from producer identity `key` is refused for the queue
    /// bounds, if it is: the broker's bounds (`--max-queued`, `--max-queued-bytes`), then the
    /// share of each that one task name and one producer identity may hold (`--queue-share`).
    /// The count bounds apply to a task that would wait (no consumer is free for it); the byte
    /// bounds to every task not done. A `delayed` task (its `not_before` ahead) always waits.
    func admission(name: String, args: Int, from key: [UInt8], delayed: Bool = false) -> String? {
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
              delayed || table.wouldQueue(name) else { return nil }
        if table.heldCount >= config.maxQueued {
            let retrying = table.delayedCount - table.scheduledCount
            return "queue full: \(table.queue.count) tasks queued, \(table.scheduledCount) scheduled and \(retrying) waiting to retry (--max-queued \(config.maxQueued))"
        }
        if named.tasks >= share {
            return "queue share used: \(named.tasks) tasks named '\(name)' are waiting, that name's share (\(config.queueShare)% of --max-queued \(config.maxQueued)); \(servedNote(name))"
        }
        if owned.tasks >= share {
            return "queue share used: this producer has \(owned.tasks) tasks waiting (queued, scheduled or to retry), its share (\(config.queueShare)% of --max-queued \(config.maxQueued), so that other producers are served); wait for some of them to run"
        }
        return nil
    }

    /// Whether anyone serves `name` (or it is paused), for a refusal of its tasks.
    func servedNote(_ name: String) -> String {
        if table.isPaused(name) { return "'\(name)' is paused: its tasks wait until `conveyor resume \(name)`" }
        return table.consumers.isServed(name) ? "its consumers are busy" : "no connected consumer serves '\(name)': start one"
    }

    /// Notices per producer connection at most (one per unserved task name).
    static var maxNotices: Int { 100 }

    /// The names served now, for a message: "served now: a, b, c" (the first 20).
    func servedNow() -> String {
        let names = table.consumers.servedNames
        guard !names.isEmpty else { return "no consumer is connected" }
        let shown = names.prefix(20).joined(separator: ", ")
        return "served now: " + shown + (names.count > 20 ? " and \(names.count - 20) more" : "")
    }

    /// A task accepted for a name no connected consumer serves: its producer is told at once
    /// (`NOTICE`), once per name per connection, instead of finding out when it times out.
    func noticeUnserved(_ name: String, id: String, to route: Frame, key: [UInt8], version: ProtocolVersion,
                        options: TaskOptions) {
        guard version >= .v3, let peer = producers[key], !peer.noticed.contains(name),
              peer.noticed.count < Self.maxNotices else { return }
        producers[key]?.noticed.insert(name)
        let seconds = Double(options.timeoutMilliseconds) / 1000
        let text = "no connected consumer serves '\(name)'; \(servedNow()); the task waits for one up to its timeout (\(seconds.formatted()) s)"
        var notice = OutgoingMessage(to: route, .notice, version: version)
        notice.append(#"{"id":\#(JSONText.quoted(id)),"name":\#(JSONText.quoted(name)),"notice":\#(JSONText.quoted(text))}"#)
        outbox.send(notice, on: .frontend)
    }
}
