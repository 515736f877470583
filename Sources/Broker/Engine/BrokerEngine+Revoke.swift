import ConveyorProtocol
import ZeroMQ

/// A producer's cancel of a reserved task, waiting for the consumer that holds it.
struct PendingCancel {
    /// Who asked (a cancel may be asked twice), to be answered in the version each asked in.
    var waiters: [(route: Frame, version: ProtocolVersion)]
    /// When to stop waiting (monotonic ns): the task has started after all, and runs on.
    let deadline: UInt64
}

/// `CANCEL` of a reserved task (dispatched, waiting in its consumer's prefetch buffer): the broker
/// sends REVOKE, and the consumer hands the task back unstarted (a DONE `requeue`), which ends it
/// `cancelled`; the cancel is answered then. If the consumer had started the task meanwhile it
/// sends nothing, and after ``revokeWait`` the answer is `running`. A task that finishes, or comes
/// back to the queue (its consumer lost), meanwhile is answered at the next tick (`done`, or
/// cancelled from the queue).
extension BrokerEngine {
    /// How long a REVOKE gets for its hand-back (ns).
    static var revokeWait: UInt64 { 1_000_000_000 }

    func cancel(_ idFrame: Frame, route: Frame, version: ProtocolVersion, now: BrokerInstant) {
        let id = idFrame.string
        if var pending = pendingCancels[id] {
            pending.waiters.append((route, version))
            pendingCancels[id] = pending
            return
        }
        let (outcome, consumer) = table.cancelOrRevoke(id, now: now.wall)
        if let outcome {
            answerCancel(id, outcome, to: route, version: version)
            return
        }
        if let consumer {
            pendingCancels[id] = PendingCancel(waiters: [(route, version)], deadline: now.monotonic &+ Self.revokeWait)
            outbox.revoke(id, on: consumer)
        }
    }

    /// Answers the cancels whose task was handed back, finished, went back to the queue, or whose
    /// wait is over. Every tick, while there are any.
    func settleCancels(now: BrokerInstant) {
        guard !pendingCancels.isEmpty else { return }
        // In id order: the same run of events settles the same way every time.
        for (id, pending) in pendingCancels.sorted(by: { $0.key < $1.key }) {
            let outcome: CancelOutcome
            switch table[id]?.phase {
            case nil:
                outcome = .unknown
            case .done?:
                // Cancelled by the hand-back, or finished before the consumer saw the REVOKE.
                let byHandBack = !table.revoking.contains(id) && table[id]?.result?.status == .cancelled
                outcome = byHandBack ? .cancelled : .done
            case .queued?, .delayed?:
                // Back in the queue (its consumer was lost): cancel it there.
                outcome = table.cancel(id, now: now.wall)
            case .running?:
                guard now.monotonic >= pending.deadline else { continue }
                outcome = .running
            }
            table.revokeUnanswered(id)
            pendingCancels[id] = nil
            for waiter in pending.waiters { answerCancel(id, outcome, to: waiter.route, version: waiter.version) }
        }
    }

    private func answerCancel(_ id: String, _ outcome: CancelOutcome, to route: Frame, version: ProtocolVersion) {
        var reply = OutgoingMessage(to: route, .cancelReply, version: version)
        reply.append(id)
        reply.append(outcome.rawValue)
        outbox.send(reply, on: .frontend)
    }
}
