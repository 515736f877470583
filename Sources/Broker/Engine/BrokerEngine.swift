import ConveyorJournal
import ConveyorProtocol
import ConveyorSystem
import DequeModule
import Foundation
import Logging
import ZeroMQ

/// The time of one event: wall clock for task times (deadlines, backoffs, retention: they must
/// mean the same after a restart), monotonic for peers' liveness (immune to clock jumps).
struct BrokerInstant: Sendable {
    var wall: UInt64
    var monotonic: UInt64

    static var now: BrokerInstant { BrokerInstant(wall: wallClockNanoseconds(), monotonic: monotonicNanoseconds()) }
}

/// A producer the broker has heard from: when (monotonic ns), in which protocol version, and who
/// it is.
struct ProducerPeer {
    var lastSeen: UInt64
    var version: ProtocolVersion
    /// Who it is and what it may do: its connection's credentials from the clients file, or,
    /// without client authentication, everything under its routing id.
    let access: PeerAccess
    /// The number the ZAP handler gave its connection (0 without client authentication): a
    /// routing id handed over to another connection gets a new record, with that one's identity.
    let connection: UInt64
    /// Task names it was told no consumer serves (``BrokerEngine/noticeUnserved``): once each,
    /// at most ``BrokerEngine/maxNotices``.
    var noticed: Set<String> = []

    /// The producer's identity: the name of its key in the clients file (`--curve-clients-file`),
    /// or, without client authentication, its routing id as text. What per-identity limits and
    /// fair shares key on; several connections (a CLI call, a restarted producer) may share one.
    var identity: String { access.identity }
}

/// The broker's protocol logic without sockets: takes decoded commands from producers and
/// consumers, checks them, and drives the ``TaskTable``; what goes out goes to the outbox. The
/// socket loop (``BrokerLoop``) only receives, decodes, calls in here and flushes.
final class BrokerEngine<Outbox: BrokerOutbox> {
    let config: BrokerConfiguration
    let logger: Logger
    // Checked statically, not at run time: only this engine, on the broker thread, touches it, and a
    // dynamic check on every access cost about a tenth of the broker's time per task.
    @exclusivity(unchecked) var table: TaskTable<Outbox>
    /// The table's outbox, held here too: reading it through `table` would copy the table.
    let outbox: Outbox
    /// Producers heard from recently, by routing id, told DISCONNECT when the broker stops. Written
    /// by this engine only (``handleFrontend(_:connection:now:)``, ``meetProducer(_:connection:version:now:)``).
    // Checked statically, as `table` is: only this engine, on the broker thread, touches it, and
    // it is looked at several times per message.
    @exclusivity(unchecked) var producers: [[UInt8]: ProducerPeer] = [:]
    /// Set once the broker is stopping: no new tasks, no dispatches.
    private(set) var draining = false
    var badInputLog = RateLimitedLog(interval: 1_000_000_000)
    let heartbeatNanos: UInt64
    /// The body of the broker's `HELLO`, written once.
    let brokerHello: String
    /// The longest loop turn (receive, handle, tick, flush; not the wait in poll) since the last
    /// `STATS`, and since the start, in ns: how long one peer can hold up the others.
    private(set) var longestTurnSinceStats: UInt64 = 0
    private(set) var longestTurn: UInt64 = 0
    /// The durable broker's journal (`nil` in memory): its figures go into `STATS`, and while it
    /// cannot write new tasks are refused.
    let journal: Journal?
    /// Reads who sent the message being handled, for a connection the engine has not met yet;
    /// `nil` when clients are not authenticated (then every peer may do everything). Set once,
    /// before the first message; read for every message (hence no dynamic exclusivity check).
    @exclusivity(unchecked) var credentials: (any CredentialReader)?
    /// The broker's connection counts, for `STATS` (`nil` in tests without sockets).
    var connections: ConnectionCounters?
    var accessLog = RateLimitedLog(interval: 1_000_000_000)
    /// Cancels of reserved tasks waiting for their consumer to hand the task back (REVOKE), by
    /// task id (BrokerEngine+Revoke.swift).
    var pendingCancels: [String: PendingCancel] = [:]
    /// What `TASKS` requests may still look at in the current window (BrokerEngine+Tasks.swift).
    var listingBudget = ListingBudget()
    /// (monotonic ns, tasks completed) once a second, for the rates in `STATS`.
    var completionSamples = Deque<(at: UInt64, completed: Int)>()
    /// Periodic schedules (BrokerEngine+Schedules.swift). Durable, like the tasks.
    var schedules = BrokerSchedules()

    /// When the engine was made (monotonic ns).
    let startedAt = monotonicNanoseconds()

    init(config: BrokerConfiguration, logger: Logger, outbox: Outbox, journal: Journal? = nil) {
        self.journal = journal
        self.config = config
        self.logger = logger
        self.heartbeatNanos = config.heartbeatInterval.nanoseconds
        self.outbox = outbox
        self.brokerHello = Hello(role: .broker, capabilities: [.leases, .limits, .notBefore, .pause, .purge, .revoke, .schedules, .tasks, .uniqueKey], software: "conveyor", heartbeatMilliseconds: config.heartbeatInterval.milliseconds,
                                 limits: HelloLimits(maxMessageSize: config.maxMessageSize, maxGroups: Envelope.maxGroups,
                                                     maxQueued: config.maxQueued)).json
        self.table = TaskTable(outbox: outbox, resultCapacity: config.resultRetentionCount,
                               resultBytes: config.resultRetentionBytes,
                               resultRetentionNanoseconds: config.resultRetention.nanoseconds,
                               deadLetterCapacity: config.deadLetterCapacity, deadLetterBytes: config.deadLetterBytes,
                               leaseNanoseconds: config.leaseDuration.nanoseconds)
        table.metrics = config.metricsFactory.map(TaskMetrics.init(factory:))
    }

    // MARK: Frontend (producers)

    /// One message from a producer. `connection`: the number ZAP gave the connection it came on
    /// (0 without client authentication).
    func handleFrontend(_ envelope: Envelope, connection: UInt64 = 0, now: BrokerInstant) {
        let route = envelope.routingID!
        let key = route.bytes
        let version = envelope.version
        let access: PeerAccess
        if let index = producers.index(forKey: key), producers.values[index].connection == connection {
            producers.values[index].lastSeen = now.monotonic
            access = producers.values[index].access
            if producers.values[index].version != version {
                producers.values[index].version = version
                outbox.producer(key, speaks: version)
            }
        } else {
            guard let met = meetProducer(key, connection: connection, version: version, now: now) else {
                reply(error: "refused \(envelope.command): this connection has no identity", to: route, on: .frontend, version: version)
                return
            }
            access = met
        }
        if credentials != nil, let refusal = refusal(of: envelope, by: access) {
            refuse(refusal, to: route, on: .frontend, version: version)
            return
        }
        switch envelope.command {
        case .submit:
            for group in envelope.groups {
                let base = group.startIndex
                submit(id: group[base], name: group[base + 1], options: group[base + 2], args: group[base + 3],
                       route: route, key: key, version: version, access: access, now: now)
            }
        case .cancel:
            cancel(envelope[0], route: route, version: version, now: now)
        case .status:
            if outbox.isDropping(to: key) {
                // It is not reading: a reply (perhaps a large result) would only be dropped.
                outbox.dropped(to: key)
            } else {
                outbox.send(statusReply(envelope[0], to: route, version: version), on: .frontend)
            }
        case .stats:
            var reply = OutgoingMessage(to: route, .statsReply, version: version)
            reply.append(statisticsJSON())
            outbox.send(reply, on: .frontend)
        case .heartbeat:
            outbox.send(OutgoingMessage(to: route, .heartbeat, version: version), on: .frontend)
        case .deadLetters:
            outbox.send(deadLetterReply(action: envelope[0].string, id: envelope[1].string, to: route,
                                        version: version, now: now), on: .frontend)
        case .hello:
            hello(envelope, to: route, on: .frontend)
        case .purge:
            var reply = OutgoingMessage(to: route, .purgeReply, version: version)
            if let name = Self.identifier(envelope[0]) {
                reply.append(#"{"name":\#(JSONText.quoted(name)),"purged":\#(table.purge(name: name, now: now.wall))}"#)
            } else {
                reply.append(#"{"error":"task name must be 1-\#(Limits.maxIdentifierBytes) bytes of visible ASCII"}"#)
            }
            outbox.send(reply, on: .frontend)
        case .pause:
            outbox.send(pauseReply(action: envelope[0].string, name: envelope[1], to: route, version: version, now: now), on: .frontend)
        case .schedule:
            outbox.send(scheduleReply(action: envelope[0].string, body: envelope[1], args: envelope[2], to: route,
                                      version: version, now: now), on: .frontend)
        case .limit:
            outbox.send(limitReply(envelope[0], to: route, version: version, now: now), on: .frontend)
        case .tasks:
            if outbox.isDropping(to: key) {
                // It is not reading: a page of up to a thousand tasks would only be dropped.
                outbox.dropped(to: key)
            } else if let reply = tasksReply(envelope[0], access: access, to: route, version: version, now: now) {
                outbox.send(reply, on: .frontend)
            }
        case .read:
            let text = envelope[0].string
            if text == "connected" {
                outbox.producer(key, read: nil)
            } else if let bytes = Int(text), bytes >= 0 {
                outbox.producer(key, read: bytes)
            } else {
                reply(error: "READ takes the bytes read since the last READ (a decimal number) or 'connected', not '\(text.prefix(40))'",
                      to: route, on: .frontend, version: version)
            }
        case .disconnect:
            producers[key] = nil
        default:
            reply(error: "\(envelope.command) is not a producer command; the frontend takes SUBMIT, CANCEL, STATUS, STATS, DEAD_LETTERS, PURGE, PAUSE, SCHEDULE, LIMIT, TASKS, READ, HELLO, HEARTBEAT and DISCONNECT",
                  to: route, on: .frontend, version: version)
        }
    }

    /// One SUBMIT group: a new task, or a resubmission of one the broker holds (safe by design:
    /// the same task, whatever the content).
    func submit(id idFrame: Frame, name nameFrame: Frame, options optionsFrame: Frame, args: Frame,
                route: Frame, key: [UInt8], version: ProtocolVersion, access: PeerAccess, now: BrokerInstant) {
        func reject(_ id: String, _ reason: String) {
            outbox.rejected(id, reason: reason, to: key, route: route, version: version)
        }
        guard let id = Self.identifier(idFrame) else {
            reject(idFrame.string, "task id must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII")
            return
        }
        let checked = credentials != nil
        if checked, !access.roles.contains(.submit) {
            reject(id, "refused: SUBMIT needs the submit role; identity '\(access.identity)' has the roles \(access.roles)")
            return
        }
        if let existing = table[id] {
            if checked, existing.submitter != access.identity {
                reject(id, "refused: task id \(id) is another identity's task; pick ids of your own")
                return
            }
            // The same id is the same task only with the same name and args (asynq's
            // ErrTaskIDConflict): anything else would answer with another task's result.
            if !nameFrame.contentEquals(existing.name.utf8) {
                reject(id, "id \(id) is held by a '\(existing.name)' task; this submit names '\(nameFrame.string.prefix(64))'. A resubmission must have the same name and args: use a new id")
                return
            }
            if existing.argsDigest != 0, args.withUnsafeBytes({ TaskRecord.digest($0) }) != existing.argsDigest {
                reject(id, "id \(id) is held by a '\(existing.name)' task with other args. A resubmission must have the same name and args: use a new id")
                return
            }
            // Follow the producer's new route; a finished task's result goes again.
            table.reroute(existing, to: key)
            outbox.accepted(idFrame, to: key, route: route, version: version)
            if existing.isDone, let stored = existing.result {
                outbox.result(id: id, stored, to: key, redelivery: true)
            }
            return
        }
        guard let name = Self.identifier(nameFrame) else {
            reject(id, "task name must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII")
            return
        }
        if Webhook.isReserved(name) {
            reject(id, "task names starting with '\(Webhook.reservedPrefix)' are the broker's own ('\(name)'): choose another name")
            return
        }
        if checked, !access.allows(task: name) {
            reject(id, "refused: identity '\(access.identity)' may not submit tasks named '\(name)' (its tasks: \(access.tasksDescription))")
            return
        }
        let options: TaskOptions
        do {
            options = try optionsFrame.withUnsafeBytes { buffer throws(ProtocolError) in
                try TaskOptions(field: buffer, version: version)
            }
        } catch {
            reject(id, error.description)
            return
        }
        if draining {
            reject(id, "broker is shutting down")
            return
        }
        if let journal, journal.isFailing {
            table.tallyRejected(name: name)
            reject(id, "the broker cannot write its journal (\(journal.writeFailure ?? "write failed")); nothing it accepted is lost, but it takes no new tasks until the journal can be written again: free space in \(journal.configuration.directory)")
            return
        }
        // A time too far ahead, or a uniqueness key held by another task (answered with its id).
        if options.notBefore != nil || options.uniqueKey != nil,
           answeredBeforeAccept(id: id, idFrame: idFrame, name: name, options: options, key: key, route: route,
                                version: version, access: access, now: now) { return }
        guard args.count <= config.maxMessageSize else {
            reject(id, "args are \(args.count) bytes; the broker takes at most \(config.maxMessageSize) (--max-message-size)")
            return
        }
        let served = table.consumers.isServed(name)
        if !served, options.requireConsumer {
            table.tallyRejected(name: name)
            reject(id, "no connected consumer serves '\(name)' (require_consumer); \(servedNow())")
            return
        }
        // Shares go by the client's name where clients are authenticated, else by routing id.
        let owner = checked ? Array(access.identity.utf8) : key
        let delayed = TaskTable<Outbox>.scheduledTime(options, now: now.wall) != nil
        if let reason = admission(name: name, args: args.count, from: owner, delayed: delayed) {
            table.tallyRejected(name: name)
            reject(id, reason)
            return
        }
        // ACCEPTED is gathered before the DISPATCH the accept may cause; both go at the turn's end.
        outbox.accepted(idFrame, to: key, route: route, version: version)
        table.accept(id: id, name: name, args: args.bytes, options: options, producer: key, owner: owner,
                     uniqueScope: checked ? access.identity : "", now: now.wall)
        if !served { noticeUnserved(name, id: id, to: route, key: key, version: version, options: options) }
        if checked { own(id, by: access.identity) }
    }

    // MARK: HELLO

    /// `HELLO` (version 3, either socket): answered with the broker's own, whatever the peer said.
    func hello(_ envelope: Envelope, to route: Frame, on side: BrokerSide) {
        do {
            _ = try JSONDecoder().decode(Hello.self, from: Data(envelope[0].bytes))
        } catch {
            reply(error: "HELLO body is not a valid hello: \(error)", to: route, on: side, version: envelope.version)
            return
        }
        var reply = OutgoingMessage(to: route, .hello, version: envelope.version)
        reply.append(brokerHello)
        outbox.send(reply, on: side)
    }

    func noteTurn(nanoseconds: UInt64) {
        if nanoseconds > longestTurnSinceStats {
            longestTurnSinceStats = nanoseconds
            if nanoseconds > longestTurn { longestTurn = nanoseconds }
        }
    }

    func resetLongestTurn() { longestTurnSinceStats = 0 }

    /// Hands the records of this turn's transitions to `journal` (from inside the engine, where
    /// the table is reached in place: from outside, generic code may copy it).
    func commitJournal(to journal: Journal) -> UInt64 {
        journal.commit(&table.journal)
    }

    // MARK: Stopping

    /// The drain begins: no new tasks (REJECTED, "broker is shutting down"), no more dispatches;
    /// the tasks running go on, and their results are taken and delivered.
    func beginDrain(timeout: Duration) {
        draining = true
        table.dispatching = false
        logger.info("broker stopping: taking no new tasks; waiting for the running ones", metadata: [
            "tasks.queued": "\(table.queue.count)", "tasks.running": "\(table.runningCount)",
            "drain_timeout_s": "\(timeout.seconds)",
        ])
    }

    /// Whether the drain still waits: tasks are running on consumers that are still here.
    var drainWaits: Bool { table.runningCount > 0 }

    /// Tells consumers to stop and producers that the broker is going away.
    func sayGoodbye() {
        draining = true
        table.dispatching = false
        for consumer in table.consumers.consumers.values {
            outbox.send(OutgoingMessage(to: consumer.key, .disconnect, version: consumer.version), on: .backend)
        }
        for (key, peer) in producers {
            outbox.send(OutgoingMessage(to: key, .disconnect, version: peer.version), on: .frontend)
        }
        logger.info("broker stopped", metadata: [
            "tasks.queued": "\(table.queue.count)", "tasks.running": "\(table.runningCount)",
        ])
    }

    // MARK: Errors

    func reply(error text: String, to route: Frame, on side: BrokerSide, version: ProtocolVersion) {
        var message = OutgoingMessage(to: route, .error, version: version)
        message.append(text)
        outbox.send(message, on: side)
    }

    /// A message that failed to decode: counted, logged (rate-limited), and answered with ERROR
    /// unless it is not Conveyor at all.
    func rejectBadInput(_ frames: Multipart, error: ProtocolError, side: BrokerSide) {
        table.totals.badMessages += 1
        badInputLog.log(logger, "bad message dropped", metadata: [
            "side": "\(side)", "error": "\(error)", "frames": "\(frames.count)",
        ])
        if case .notConveyor = error { return }
        guard let route = frames.first, frames.count > 1 else { return }
        reply(error: error.description, to: route, on: side, version: ProtocolVersion.reply(to: frames, fromRouter: true))
    }

    /// A task id or name: 1-255 bytes of visible ASCII. (Swift strings compare canonically
    /// equivalent Unicode as equal, so non-ASCII ids could collide.)
    static func identifier(_ frame: Frame) -> String? {
        let count = frame.count
        guard count > 0, count <= Limits.maxIdentifierBytes else { return nil }
        let visible = frame.withUnsafeBytes { $0.allSatisfy { $0 > 0x20 && $0 < 0x7F } }
        return visible ? frame.string : nil
    }

    /// Forgets producers not heard from within the result retention.
    func forgetQuietProducers(now: BrokerInstant) {
        let retention = config.resultRetention.nanoseconds
        let before = producers
        producers = producers.filter { now.monotonic &- $0.value.lastSeen < retention }
        guard producers.count != before.count else { return }
        for key in before.keys where producers[key] == nil {
            outbox.producer(key, speaks: .current)
            outbox.producer(key, read: nil)
        }
    }
}
