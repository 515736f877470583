import ConveyorJournal
import ConveyorProtocol
import Foundation

extension TaskTable {
    /// The producer identity deliveries count against (their own share, not the task's producer's).
    static var deliveryOwner: [UInt8] { Array(Webhook.taskName.utf8) }

    /// A task with a callback URL has ended: (new) → queued for its delivery task (Webhook.swift),
    /// accepted before the caller journals the task's `finished` record, in the same turn. Its
    /// producer is empty: a delivery's own result goes to no one (it is kept for `status`, and a
    /// delivery that runs out of attempts is a dead letter). A recovery that made the delivery
    /// already (the task ran again) keeps the one it has.
    mutating func createDelivery(for task: TaskRecord, url: String, status: TaskStatus, body: [UInt8], info: [UInt8],
                                 now: UInt64) {
        let id = Webhook.deliveryID(sequence: task.sequence)
        guard records[id] == nil else { return }
        let args = Webhook.deliveryArgs(url: url, id: task.id, name: task.name, sequence: task.sequence, status: status,
                                        body: body, info: info, attempts: task.attempts, finishedAt: now)
        accept(id: id, name: Webhook.taskName, args: args, options: Webhook.deliveryOptions, producer: [],
               owner: Self.deliveryOwner, now: now)
    }

    /// Whether a delivery read back from the journal belongs to an end that was not journaled: its
    /// task (accepted as `sequence`) is there and not done. The journal was cut between the two
    /// records; the task runs again and makes its delivery again when it ends.
    func isOrphanDelivery(_ entry: TaskEntry) -> Bool {
        guard entry.name == Webhook.taskName, entry.state != .done,
              let parent = try? JSONDecoder().decode(DeliveryParent.self, from: Data(entry.args)),
              let task = records[parent.id] else { return false }
        return !task.isDone && task.sequence == parent.sequence
    }
}

/// The task a delivery's args were made for (``Webhook/deliveryArgs(url:id:name:sequence:status:body:info:attempts:finishedAt:)``).
private struct DeliveryParent: Decodable {
    let id: String
    let sequence: UInt64

    enum CodingKeys: String, CodingKey {
        case id = "parent"
        case sequence
    }
}
