import ConveyorProtocol
import ZeroMQ

/// Delayed and unique tasks at submit time (docs/PROTOCOL.md §8.12).
extension BrokerEngine {
    /// Looks at a new task's `not_before` and `unique_key` before it is accepted: a time more than
    /// ``TaskOptions/maxDelayMilliseconds`` after the broker's clock is refused; a key held by
    /// another task of the same name (in the submitter's scope) makes no task: the submit is
    /// answered `ACCEPTED` with `ID HOLDER` (the id submitted, a space, the holder's id) and gets
    /// the holder's result under that pair, now if it has one, else when it ends. Returns whether
    /// the submit was answered here.
    func answeredBeforeAccept(id: String, idFrame: Frame, name: String, options: TaskOptions, key: [UInt8],
                              route: Frame, version: ProtocolVersion, access: PeerAccess, now: BrokerInstant) -> Bool {
        if let notBefore = options.notBefore {
            let clock = now.wall / 1_000_000
            if notBefore > clock &+ TaskOptions.maxDelayMilliseconds {
                let days = (notBefore - clock) / 86_400_000
                let limit = TaskOptions.maxDelayMilliseconds / 86_400_000
                outbox.rejected(id, reason: "not_before \(notBefore) is \(days) days after the broker's clock (\(clock) ms since the epoch); the broker takes tasks at most \(limit) days ahead", to: key, route: route, version: version)
                return true
            }
        }
        guard let uniqueKey = options.uniqueKey,
              let holder = table.uniqueHolder(scope: credentials != nil ? access.identity : "", name: name, key: uniqueKey, now: now.wall)
        else { return false }
        let answer = id + " " + holder.id
        if holder.isDone {
            guard let stored = holder.result else { return false }
            outbox.result(id: answer, stored, to: key, redelivery: true)
        } else if !table.unique.wait(on: holder, producer: key, id: id) {
            outbox.rejected(id, reason: "unique key '\(uniqueKey)' of '\(name)' is held by task \(holder.id), and \(UniqueKeys.maxWaitersPerTask) other submits already wait for its result; wait for it, or ask `conveyor status \(holder.id)`", to: key, route: route, version: version)
            return true
        }
        outbox.accepted(Frame(Array(answer.utf8)), to: key, route: route, version: version)
        return true
    }
}
