import ConveyorProtocol
import ConveyorSystem
import Foundation
import Logging
import ZeroMQ

extension BrokerEngine {
    // MARK: Backend (consumers)

    /// One message from a consumer. `connection`: the number ZAP gave the connection it came on
    /// (0 without client authentication).
    func handleBackend(_ envelope: Envelope, connection: UInt64 = 0, now: BrokerInstant) {
        let route = envelope.routingID!
        let key = route.bytes
        let consumer = credentials == nil ? table.consumers[key] : self.consumer(key, connection: connection, now: now)
        let version = envelope.version
        consumer?.lastSeen = now.monotonic
        consumer?.version = version
        switch envelope.command {
        case .ready:
            guard envelope[0].count <= Limits.maxReadyBytes else {
                table.totals.badMessages += 1
                reply(error: "READY body is \(envelope[0].count) bytes; the broker reads at most \(Limits.maxReadyBytes)",
                      to: route, on: .backend, version: version)
                return
            }
            let info: ReadyInfo
            do {
                info = try JSONDecoder().decode(ReadyInfo.self, from: Data(envelope[0].bytes))
            } catch {
                reply(error: "READY body is not a valid consumer announcement: \(error)", to: route, on: .backend, version: version)
                return
            }
            ready(info, from: consumer, route: route, key: key, connection: connection, version: version, now: now)
        case .done:
            // With client authentication, results are taken only from a registered consumer on its
            // own connection: another connection on a handed-over routing id gets nothing used.
            let used = credentials == nil || consumer != nil
            for group in envelope.groups where used {
                let base = group.startIndex
                done(id: group[base], status: group[base + 1], body: group[base + 2], info: group[base + 3],
                     from: consumer, sender: key, now: now)
            }
            if let consumer {
                table.refill(consumer, now: now.wall)
            } else {
                // A consumer the broker does not know (declared dead, or from before a restart):
                // without client authentication its results were used above; tell it to announce
                // itself again.
                outbox.send(OutgoingMessage(to: route, .disconnect, version: version), on: .backend)
            }
        case .renew:
            if let consumer {
                table.renew(envelope.groups.map { $0[$0.startIndex].string }, from: consumer, now: now.wall)
            } else {
                outbox.send(OutgoingMessage(to: route, .disconnect, version: version), on: .backend)
            }
        case .heartbeat:
            if consumer == nil {
                outbox.send(OutgoingMessage(to: route, .disconnect, version: version), on: .backend)
            }
        case .hello:
            hello(envelope, to: route, on: .backend)
        case .disconnect:
            if let consumer { remove(consumer, reason: "consumer disconnected", now: now) }
        default:
            reply(error: "\(envelope.command) is not a consumer command; the backend takes READY, DONE, RENEW, HELLO, HEARTBEAT and DISCONNECT",
                  to: route, on: .backend, version: version)
        }
    }

    /// A READY: a new consumer, or a known one's new capacity (0: draining, it keeps its running
    /// tasks and gets no more).
    func ready(_ info: ReadyInfo, from consumer: ConsumerRecord?, route: Frame, key: [UInt8], connection: UInt64 = 0,
               version: ProtocolVersion, now: BrokerInstant) {
        guard info.tasks.count <= Limits.maxServedNames else {
            table.totals.badMessages += 1
            reply(error: "READY lists \(info.tasks.count) task names; a consumer may serve at most \(Limits.maxServedNames)",
                  to: route, on: .backend, version: version)
            return
        }
        guard info.capacity >= 0, info.capacity <= Limits.maxCapacity else {
            reply(error: "READY capacity must be 0-\(Limits.maxCapacity)", to: route, on: .backend, version: version)
            return
        }
        guard (info.heartbeatMilliseconds ?? 1000) >= 1, (info.heartbeatMilliseconds ?? 1000) <= 60_000 else {
            reply(error: "READY heartbeat_ms must be 1-60000", to: route, on: .backend, version: version)
            return
        }
        if let consumer {
            table.update(consumer, info: allowedAnnouncement(info, for: consumer.access ?? .unauthenticated(routingID: key), tell: false, route: route, version: version),
                         now: now.wall)
        } else if info.update == true {
            // A capacity update from a consumer this broker has let go (declared dead, or met
            // before a restart): it must announce itself anew, on a new connection.
            outbox.send(OutgoingMessage(to: route, .disconnect, version: version), on: .backend)
        } else {
            guard let access = consumerAccess(key, connection: connection, route: route, version: version) else { return }
            let allowed = allowedAnnouncement(info, for: access, tell: true, route: route, version: version)
            let record = ConsumerRecord(key: key, info: allowed, now: now.monotonic)
            record.version = version
            record.access = access
            record.connection = connection
            logger.info("consumer ready", metadata: [
                "consumer.pid": "\(info.pid)", "consumer.host": "\(info.host)", "identity": "\(access.identity)",
                "consumer.capacity": "\(info.capacity)", "consumer.tasks": "\(allowed.tasks.count)",
            ])
            table.register(record, now: now.wall)
        }
    }

    /// One DONE group.
    func done(id idFrame: Frame, status statusFrame: Frame, body: Frame, info: Frame,
              from consumer: ConsumerRecord?, sender: [UInt8], now: BrokerInstant) {
        guard let status = statusFrame.withUnsafeBytes({ DoneStatus(bytes: $0) }) else {
            // Not a status this protocol knows: drop the group and leave the task as it was.
            table.totals.badMessages += 1
            return
        }
        if table.done(id: idFrame.string, status: status, body: body, info: info, from: consumer,
                      sender: sender, now: now.wall) == .duplicate {
            table.totals.duplicatesDropped += 1
        }
    }

    /// Forgets consumers and puts the tasks they held back at the front of their queues.
    func remove(_ gone: [ConsumerRecord], reason: String, now: BrokerInstant) {
        for consumer in gone { consumer.pending = nil }
        for (consumer, held) in zip(gone, table.remove(gone, reason: reason, now: now.wall)) {
            guard let held else { continue }
            logger.warning("consumer removed", metadata: [
                "consumer.pid": "\(consumer.info.pid)", "identity": "\(consumer.identity)", "reason": "\(reason)",
                "tasks.requeued": "\(held)",
            ])
        }
    }

    func remove(_ consumer: ConsumerRecord, reason: String, now: BrokerInstant) {
        remove([consumer], reason: reason, now: now)
    }

    // MARK: Time

    /// What is due: task deadlines and backoffs, silent consumers, heartbeats to consumers,
    /// results past their retention, producers gone quiet.
    func tick(now: BrokerInstant) {
        // Deadlines first (they send nothing on), then silent consumers (so that nothing is routed
        // to one of them), then the backoffs that are over.
        table.expireDeadlines(at: now.wall)
        let silent = table.consumers.silent(now: now.monotonic, heartbeat: heartbeatNanos, liveness: config.liveness)
        if !silent.isEmpty { remove(silent, reason: "consumer missed \(config.liveness) heartbeats", now: now) }
        table.reclaimExpiredLeases(at: now.wall)
        table.promoteBackoffs(at: now.wall)
        if now.wall >= schedules.nextDue { fireSchedules(now: now) }
        if table.limitsNeedSettling(now: now.wall) { table.settleLimits(now: now.wall) }
        table.expireResults(at: now.wall)
        for consumer in table.consumers.consumers.values where now.monotonic &- consumer.lastSent >= heartbeatNanos {
            consumer.lastSent = now.monotonic
            outbox.send(OutgoingMessage(to: consumer.key, .heartbeat, version: consumer.version), on: .backend)
        }
        forgetQuietProducers(now: now)
        cancelForGoneProducers(now: now)
        settleCancels(now: now)
        sampleCompletions(now: now.monotonic)
    }

    /// Once a second: the completed count, for the rates in `STATS` (61 samples kept).
    func sampleCompletions(now: UInt64) {
        if let last = completionSamples.last, now &- last.at < 1_000_000_000 { return }
        completionSamples.append((now, table.totals.completed))
        if completionSamples.count > 61 { completionSamples.removeFirst() }
    }

    /// Tasks finished per second over the last `seconds` (or since the first sample).
    func completionRate(over seconds: Int, now: UInt64) -> Double? {
        guard let newest = completionSamples.last else { return nil }
        let cutoff = now &- UInt64(seconds) * 1_000_000_000
        let oldest = completionSamples.first { $0.at >= cutoff } ?? newest
        let span = Double(now &- oldest.at) / 1e9
        guard span >= 0.5 else { return nil }
        return Double(table.totals.completed - oldest.completed) / span
    }

    /// Tasks with `cancel_on_disconnect` whose producer's connection is gone (it sent DISCONNECT,
    /// or nothing for `liveness` heartbeat intervals: a producer sends READ at least once an
    /// interval) are cancelled while they wait; running ones finish, their results kept.
    func cancelForGoneProducers(now: BrokerInstant) {
        guard !table.disconnectCancels.isEmpty else { return }
        let silence = heartbeatNanos &* UInt64(config.liveness)
        // After a start (a restart, with tasks from the journal), producers get time to reconnect.
        guard now.monotonic &- startedAt > max(silence, 10_000_000_000) else { return }
        for (key, ids) in table.disconnectCancels {
            if let peer = producers[key], now.monotonic &- peer.lastSeen <= silence { continue }
            var cancelled = 0
            for id in ids.sorted() where table[id]?.isHeld == true {
                if table.cancel(id, now: now.wall, reason: "cancelled: its producer disconnected (cancel_on_disconnect)") == .cancelled {
                    cancelled += 1
                }
            }
            if cancelled > 0 {
                logger.info("cancelled the waiting tasks of a producer that is gone", metadata: [
                    "tasks": "\(cancelled)", "reason": "cancel_on_disconnect",
                ])
            }
            // Those still running stay listed until they finish.
            table.disconnectCancels[key] = ids.filter { table[$0]?.holder != nil }.nilIfEmpty
        }
    }

    // MARK: Stats

    func statistics() -> BrokerStatistics {
        var statistics = BrokerStatistics(
            queued: table.queue.countsByName,
            queuedTotal: table.queue.count,
            running: table.runningCount,
            consumers: table.consumers.consumers.values.map {
                BrokerStatistics.Consumer(
                    pid: $0.info.pid, host: $0.info.host, process: $0.info.process, threads: $0.info.threads,
                    capacity: $0.info.capacity, inFlight: $0.inFlight.count, freeCredit: max(0, $0.credit),
                    completed: $0.completed, tasks: $0.info.tasks.sorted(),
                    leasesExpired: $0.leasesExpired, quarantined: $0.isQuarantined, identity: $0.identity)
            }.sorted { ($0.host, $0.pid) < ($1.host, $1.pid) },
            producers: producers.count,
            resultsKept: table.results.count,
            totals: table.totals,
            deadLetters: table.deadLetters.newest(100),
            deadLetterTotal: table.deadLetters.count,
            journal: journalStatistics(),
            delayed: table.delayedCount - table.scheduledCount,
            longestTurnMilliseconds: Double(longestTurnSinceStats) / 1e6,
            longestTurnEverMilliseconds: Double(longestTurn) / 1e6)
        statistics.reserved = table.reservedCount
        statistics.scheduled = table.scheduledCount
        statistics.uniqueKeys = table.unique.count
        let wall = wallClockNanoseconds()
        statistics.oldestQueuedAge = table.queue.oldestAcceptance.mapValues { Double(wall > $0 ? wall - $0 : 0) / 1e9 }
        let now = monotonicNanoseconds()
        statistics.uptime = Double(now &- startedAt) / 1e9
        statistics.completedRate10s = completionRate(over: 10, now: now)
        statistics.completedRate60s = completionRate(over: 60, now: now)
        statistics.unreadBytes = outbox.unreadTotal
        statistics.repliesDropped = outbox.repliesDropped
        statistics.resultBytes = table.results.bytes
        statistics.names = table.nameFigures(queued: statistics.queued, held: table.heldByName())
        statistics.latency = BrokerStatistics.LatencyHistogram(counts: table.nameTally.latency)
        statistics.paused = table.pausedNames
        statistics.limits = table.limitFigures(now: wallClockNanoseconds())
        statistics.schedules = schedules.byID.count
        return statistics
    }

    private func journalStatistics() -> BrokerStatistics.Journal? {
        guard let journal else { return nil }
        let now = monotonicNanoseconds()
        defer { journal.resetRate(now: now) }
        return journal.statistics(now: now)
    }

    func statisticsJSON() -> String {
        defer { resetLongestTurn() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var statistics = statistics()
        statistics.security = securityStatistics()
        return (try? String(decoding: encoder.encode(statistics), as: UTF8.self)) ?? "{}"
    }
}

extension Set {
    /// `nil` for an empty set, to drop it from a dictionary.
    var nilIfEmpty: Set? { isEmpty ? nil : self }
}
