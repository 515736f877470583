public import ConveyorProtocol
import Foundation

/// A schedule the broker holds: its definition and figures, and the args of each tick's task.
public struct ScheduleInfo: Sendable, Equatable {
    public let spec: ScheduleSpec
    /// The args, as the broker keeps them (re-encoded here with sorted keys).
    public let args: RawJSON
}

extension Producer {
    /// Adds (or replaces, by id) a periodic schedule in the broker (docs/SCHEDULES.md): each
    /// tick enqueues one task `spec.name(args)` with the id `sched:<id>:<tick's Unix seconds>`,
    /// so no restart fires a tick twice. The first tick is the first after now. Durable. Needs
    /// the admin role where the broker authenticates clients.
    /// - Throws: ``ProducerError/protocolError(_:)`` with what is wrong (a cron field, a time
    ///   zone, a period), and from a broker too old to keep schedules.
    @discardableResult
    public func addSchedule(_ spec: ScheduleSpec, args: RawJSON = RawJSON("{}")) async throws -> ScheduleInfo {
        let infos = try await scheduleRequest("add", Array(try JSONEncoder().encode(spec)), args.bytes)
        guard let info = infos.first else { throw ProducerError.unexpectedReply("SCHEDULE add answered with no schedule") }
        return info
    }

    /// Every schedule the broker holds, by id, with its last and next tick.
    public func schedules() async throws -> [ScheduleInfo] {
        try await scheduleRequest("list", Array("{}".utf8), [])
    }

    /// Removes a schedule; tasks it enqueued already are left alone. Returns it as it was.
    /// - Throws: ``ProducerError/protocolError(_:)`` when the broker holds no schedule `id`.
    @discardableResult
    public func removeSchedule(id: String) async throws -> ScheduleInfo {
        let body = #"{"id":\#(JSONText.quoted(id))}"#
        guard let info = try await scheduleRequest("remove", Array(body.utf8), []).first else {
            throw ProducerError.unexpectedReply("SCHEDULE remove answered with no schedule")
        }
        return info
    }

    private func scheduleRequest(_ action: String, _ body: [UInt8], _ args: [UInt8]) async throws -> [ScheduleInfo] {
        let json = try await adminRequest(.schedule, [Array(action.utf8), body, args])
        struct Reply: Decodable {
            let schedules: [ScheduleSpec]?
            let error: String?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(json.bytes)),
              let object = try? JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any] else {
            throw ProducerError.unexpectedReply("the broker's SCHEDULE_REPLY does not decode: \(json.text)")
        }
        if let error = reply.error { throw ProducerError.protocolError(error) }
        let raw = object["schedules"] as? [[String: Any]] ?? []
        return zip(reply.schedules ?? [], raw).map { spec, item in
            let args = item["args"].flatMap {
                try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
            }
            return ScheduleInfo(spec: spec, args: RawJSON(bytes: args.map(Array.init) ?? Array("{}".utf8)))
        }
    }
}
