import ConveyorProtocol
import Foundation
import ZeroMQ

/// `LIMIT` (docs/PROTOCOL.md §4.8.5): an operator sets or clears the global limits of a task
/// name (State/TaskTable+Limits.swift). Needs the admin role where clients are authenticated.
extension BrokerEngine {
    /// The `LIMIT_REPLY` for the ``LimitRequest`` in `body`.
    func limitReply(_ body: Frame, to route: Frame, version: ProtocolVersion, now: BrokerInstant) -> OutgoingMessage {
        var reply = OutgoingMessage(to: route, .limitReply, version: version)
        func refused(_ text: String) -> OutgoingMessage {
            reply.append(#"{"error":\#(JSONText.quoted(text))}"#)
            return reply
        }
        guard body.count <= Limits.maxReadyBytes else { return refused("LIMIT body is \(body.count) bytes; at most \(Limits.maxReadyBytes)") }
        let request: LimitRequest
        do {
            request = try JSONDecoder().decode(LimitRequest.self, from: Data(body.bytes))
        } catch {
            return refused("LIMIT body is not a limit request: \(error)")
        }
        guard Self.identifier(Frame(Array(request.name.utf8))) != nil else {
            return refused("task name must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII")
        }
        let name = request.name
        var changed = false
        if request.clear == true {
            guard request.limit == NameLimit() else { return refused("clear takes no limits beside it: clear first, then set") }
            changed = table.setLimit(name, nil, now: now.wall)
        } else if request.limit != NameLimit() {
            let merged = (table.nameLimits.limits[name] ?? NameLimit()).merging(request.limit)
            if let problem = merged.problem { return refused(problem) }
            if table.nameLimits.limits[name] == nil, table.nameLimits.limits.count >= NameLimit.maxNames {
                return refused("\(NameLimit.maxNames) task names have limits, the most a broker keeps; clear some first")
            }
            changed = table.setLimit(name, merged, now: now.wall)
        }
        if changed {
            logger.info("task name limits set", metadata: [
                "task.name": "\(name)", "limits": "\(table.nameLimits.limits[name]?.summary ?? "none")",
            ])
        }
        let figures = table.limitFigures(of: name, now: now.wall)
        let json = figures.flatMap { try? JSONEncoder.sorted.encode($0) }.map { String(decoding: $0, as: UTF8.self) } ?? "null"
        reply.append(#"{"name":\#(JSONText.quoted(name)),"changed":\#(changed),"limit":\#(json),"queued":\#(table.queue.countsByName[name] ?? 0),"served":\#(table.consumers.isServed(name))}"#)
        return reply
    }
}
