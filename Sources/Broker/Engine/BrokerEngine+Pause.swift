import ConveyorProtocol
import ZeroMQ

/// `PAUSE` (docs/PROTOCOL.md §4.8.4): an operator pauses or resumes the dispatch of a task name
/// (State/TaskTable+Pause.swift). Needs the admin role where clients are authenticated
/// (BrokerEngine+Access.swift).
extension BrokerEngine {
    /// The `PAUSE_REPLY` for `action` on the name in `nameFrame`.
    func pauseReply(action: String, name nameFrame: Frame, to route: Frame, version: ProtocolVersion,
                    now: BrokerInstant) -> OutgoingMessage {
        var reply = OutgoingMessage(to: route, .pauseReply, version: version)
        guard action == "pause" || action == "resume" else {
            reply.append(#"{"error":\#(JSONText.quoted("unknown pause action '\(action.prefix(40))': use pause or resume"))}"#)
            return reply
        }
        guard let name = Self.identifier(nameFrame) else {
            reply.append(#"{"error":"task name must be 1-\#(Limits.maxIdentifierBytes) bytes of visible ASCII"}"#)
            return reply
        }
        let outcome = action == "pause" ? table.pause(name) : table.resume(name, now: now.wall)
        if outcome.changed {
            logger.info(action == "pause" ? "task name paused" : "task name resumed", metadata: [
                "task.name": "\(name)", "tasks.queued": "\(outcome.queued)", "tasks.running": "\(outcome.running)",
            ])
        }
        reply.append(#"{"action":"\#(action)","name":\#(JSONText.quoted(name)),"paused":\#(outcome.paused),"changed":\#(outcome.changed),"queued":\#(outcome.queued),"running":\#(outcome.running),"served":\#(outcome.served)}"#)
        return reply
    }
}
