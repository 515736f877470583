import ConveyorProtocol
import Foundation
import ZeroMQ

/// The replies to STATUS and DEAD_LETTERS.
extension BrokerEngine {
    func statusReply(_ idFrame: Frame, to route: Frame, version: ProtocolVersion) -> OutgoingMessage {
        var reply = OutgoingMessage(to: route, .statusReply, version: version)
        reply.append(idFrame)
        let record = table[idFrame.string]
        let reported: TaskState
        switch record?.state {
        case .delayed? where version != .v2 && record?.isScheduled == true: reported = .scheduled
        case .queued?, .delayed?: reported = .queued
        case .running?:
            // A version-2 peer knows no `reserved`; a version-3 one takes a state it does not know.
            reported = version != .v2 && record.map(table.isReserved) == true ? .reserved : .running
        case .done?: reported = .done
        case nil: reported = .unknown
        }
        reply.append(reported.rawValue)
        if reported == .done, let stored = record?.result {
            reply.append(stored.status.rawValue)
            reply.append(stored.body)
            reply.append(stored.info)
        } else if reported == .scheduled, let record {
            // When it comes due, in the info frame: wall clock, ms since the Unix epoch.
            reply.append([UInt8]())
            reply.append([UInt8]())
            reply.append(#"{"due_at":\#(record.notBefore / 1_000_000)}"#)
        } else {
            reply.append([UInt8]())
            reply.append([UInt8]())
            reply.append([UInt8]())
        }
        return reply
    }

    /// `DEAD_LETTERS`: requeue or purge one dead letter (by id) or all of them.
    func deadLetterReply(action text: String, id: String, to route: Frame, version: ProtocolVersion,
                                 now: BrokerInstant) -> OutgoingMessage {
        var reply = OutgoingMessage(to: route, .deadLettersReply, version: version)
        switch DeadLetterAction(rawValue: text) {
        case .purge?:
            let count = table.purgeDeadLetters(id: id)
            reply.append(#"{"action":"purge","count":\#(count)}"#)
        case .requeue?:
            let count = table.revive(id: id, now: now.wall)
            reply.append(#"{"action":"requeue","count":\#(count)}"#)
        case .failures?:
            let failures = table.failures.newest(named: id)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let list = (try? encoder.encode(failures)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
            reply.append(#"{"action":"failures","count":\#(failures.count),"total":\#(table.failures.total),"failures":\#(list)}"#)
        case nil:
            let error = "unknown dead-letter action '\(text)': use requeue, purge or failures"
            reply.append(#"{"error":\#(JSONText.quoted(error))}"#)
        }
        return reply
    }
}
