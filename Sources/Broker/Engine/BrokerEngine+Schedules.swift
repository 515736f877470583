import ConveyorJournal
import ConveyorProtocol
import ConveyorSchedule
import Foundation
import ZeroMQ

/// Periodic schedules in the broker (`SCHEDULE`, docs/PROTOCOL.md §4.8.6; docs/SCHEDULES.md):
/// no separate beat process. Each tick enqueues one task with the id `sched:<id>:<tick seconds>`
/// in the same journal commit as the schedule's new `last_tick`, so no restart and no retry can
/// fire a tick twice: a tick whose task id the broker already holds makes no second task.
/// Ticks missed while the broker was down follow the schedule's `missed` policy.
extension BrokerEngine {
    /// The `SCHEDULE_REPLY` for `action` (`add`, `list`, `remove`).
    func scheduleReply(action: String, body: Frame, args: Frame, to route: Frame, version: ProtocolVersion,
                       now: BrokerInstant) -> OutgoingMessage {
        var reply = OutgoingMessage(to: route, .scheduleReply, version: version)
        func refused(_ text: String) -> OutgoingMessage {
            reply.append(#"{"error":\#(JSONText.quoted(text))}"#)
            return reply
        }
        switch action {
        case "list":
            let listed = schedules.byID.keys.sorted().map { schedules.byID[$0]!.replyJSON }
            reply.append(#"{"action":"list","schedules":[\#(listed.joined(separator: ","))]}"#)
            return reply
        case "add":
            guard body.count <= Limits.maxReadyBytes, args.count <= Limits.maxReadyBytes else {
                return refused("a schedule's definition and args may be at most \(Limits.maxReadyBytes) bytes each")
            }
            let spec: ScheduleSpec
            do {
                spec = try JSONDecoder().decode(ScheduleSpec.self, from: Data(body.bytes))
            } catch {
                return refused("SCHEDULE add body is not a schedule: \(error)")
            }
            if Webhook.isReserved(spec.name) { return refused("task names starting with '\(Webhook.reservedPrefix)' are the broker's own") }
            if schedules.byID[spec.id] == nil, schedules.byID.count >= ScheduleSpec.maxSchedules {
                return refused("the broker holds \(ScheduleSpec.maxSchedules) schedules, its most; remove some first (conveyor schedule remove ID)")
            }
            var fresh = spec
            (fresh.createdMilliseconds, fresh.lastTick, fresh.nextTick, fresh.fired, fresh.skipped) = (nil, nil, nil, nil, nil)
            let added: ActiveSchedule
            do {
                added = try ActiveSchedule(spec: fresh, args: args.bytes, now: now.wall)
            } catch {
                return refused(error.message)
            }
            let replaced = schedules.byID[spec.id] != nil
            schedules.byID[spec.id] = added
            schedules.recomputeNextDue()
            journalSchedule(added)
            logger.info(replaced ? "schedule replaced" : "schedule added", metadata: [
                "schedule.id": "\(spec.id)", "task.name": "\(spec.name)", "schedule.when": "\(spec.when)",
            ])
            reply.append(#"{"action":"add","replaced":\#(replaced),"schedules":[\#(added.replyJSON)]}"#)
            return reply
        case "remove":
            guard let request = try? JSONDecoder().decode(ScheduleRemoval.self, from: Data(body.bytes)) else {
                return refused(#"SCHEDULE remove takes {"id":"…"}"#)
            }
            guard let removed = schedules.byID.removeValue(forKey: request.id) else {
                let known = schedules.byID.keys.sorted().prefix(20).joined(separator: ", ")
                return refused("no schedule '\(request.id.prefix(80))'" + (known.isEmpty ? "; the broker holds none" : "; schedules: \(known)"))
            }
            schedules.recomputeNextDue()
            if table.journaling { table.journal.schedule(id: request.id, json: [], args: []) }
            logger.info("schedule removed", metadata: ["schedule.id": "\(request.id)"])
            reply.append(#"{"action":"remove","schedules":[\#(removed.replyJSON)]}"#)
            return reply
        default:
            return refused("unknown schedule action '\(action.prefix(40))': use add, list or remove")
        }
    }

    private func journalSchedule(_ schedule: ActiveSchedule) {
        if table.journaling { table.journal.schedule(id: schedule.spec.id, json: schedule.json, args: schedule.args) }
    }

    /// Fires every schedule due at `now` (from the tick): each due tick enqueues its task,
    /// unless the broker holds that id already (fired before a restart) or a queue bound refuses
    /// it (counted as skipped and logged).
    func fireSchedules(now: BrokerInstant) {
        let due = schedules.byID.values.filter { $0.due <= now.wall }.map(\.spec.id).sorted()
        for id in due {
            guard var schedule = schedules.byID[id] else { continue }
            let ticks = schedule.ticks(now: now.wall)
            for tick in ticks {
                let taskID = Schedule.tickID(scheduleID: id, tick: tick)
                if table[taskID] != nil { continue }
                if let refusal = tickRefusal(schedule, now: now) {
                    schedule.spec.skipped! += 1
                    logger.warning("schedule tick skipped", metadata: ["schedule.id": "\(id)", "task.id": "\(taskID)", "reason": "\(refusal)"])
                    continue
                }
                table.accept(id: taskID, name: schedule.spec.name, args: schedule.args, options: schedule.options,
                             producer: [], owner: Array("schedule:\(id)".utf8), now: now.wall)
                schedule.spec.fired! += 1
            }
            // Every tick up to now is settled: fired, or left out by the missed-tick policy.
            schedule.spec.lastTick = max(schedule.spec.lastTick ?? 0, Int64(now.wall / 1_000_000_000))
            schedule.updateNext(now: now.wall)
            schedules.byID[id] = schedule
            journalSchedule(schedule)
        }
        schedules.recomputeNextDue()
    }

    private func tickRefusal(_ schedule: ActiveSchedule, now: BrokerInstant) -> String? {
        if draining { return "broker is shutting down" }
        if let journal, journal.isFailing { return "the journal cannot be written" }
        return admission(name: schedule.spec.name, args: schedule.args.count, from: Array("schedule:\(schedule.spec.id)".utf8))
    }

    /// The schedules recovered from the journal; ticks missed while the broker was down fire at
    /// the first tick, by each schedule's policy.
    func restoreSchedules(_ recovered: [String: ScheduleEntry], now: BrokerInstant) {
        for (id, entry) in recovered {
            do {
                let spec = try JSONDecoder().decode(ScheduleSpec.self, from: Data(entry.json))
                var schedule = try ActiveSchedule(spec: spec, args: entry.args, now: now.wall)
                // Due at once if a tick was missed; else at its next tick.
                if !schedule.ticks(now: now.wall).isEmpty { schedule.due = now.wall }
                schedules.byID[id] = schedule
            } catch {
                logger.error("schedule in the journal not restored", metadata: ["schedule.id": "\(id)", "error": "\(error)"])
            }
        }
        schedules.recomputeNextDue()
    }
}

/// A `SCHEDULE remove` body.
struct ScheduleRemoval: Decodable {
    let id: String
}
