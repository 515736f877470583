import ConveyorProtocol
import ConveyorSystem
import DequeModule
import Logging
import ZeroMQ

/// The broker's outgoing messages, gathered during one loop turn and sent at its end, one per
/// peer: dispatches first (the critical path), then results, then acknowledgements.
///
/// The per-peer messages are appended to in place (`dict[key, default: …]` as an inout
/// argument): a copy taken out and stored back would copy the whole growing message on every
/// append. DISPATCH groups gather on the consumer's record (no hashing per task).
final class SocketOutbox: BrokerOutbox {
    private let frontend: Socket
    private let backend: Socket
    private let dispatchBatch: Int
    private let logger: Logger
    private var failedSendLog = RateLimitedLog(interval: 1_000_000_000)

    private var dispatchPending: [ConsumerRecord] = []
    private var outgoingResults: [[UInt8]: OutgoingMessage] = [:]
    private var outgoingAccepted: [[UInt8]: OutgoingMessage] = [:]
    private var outgoingRejected: [[UInt8]: OutgoingMessage] = [:]
    /// The version each producer last spoke, where it is not the current one.
    private var producerVersions: [[UInt8]: ProtocolVersion] = [:]
    /// Consumers a DISPATCH could not reach, for the engine to remove (``takeUnreachable()``).
    private var unreachable: [ConsumerRecord] = []
    /// When the broker is durable, the messages to producers that tell of the tasks' state wait
    /// until the journal batch of the turn that made them is written (``hold(until:)``,
    /// ``release(upTo:)``): ACCEPTED, RESULT, and the STATUS, CANCEL and DEAD_LETTERS replies, in
    /// the order they were made. The others (REJECTED, STATS, HEARTBEAT, ERROR, HELLO,
    /// DISCONNECT) acknowledge nothing and go at once: a broker whose disk is full still refuses
    /// new tasks and answers STATS right away. Messages to consumers never wait.
    let holdsFrontend: Bool
    private var turnFrontend: [OutgoingMessage] = []
    private var held = Deque<(batch: UInt64, message: OutgoingMessage)>()

    /// What each producer connection was sent and has not reported read (`READ`), in bytes. A
    /// connection past its budget, or past its part of the total, gets nothing more but one
    /// ERROR saying why, until it reads; then `RESUME` tells it to resubmit what it missed. A
    /// connection with nothing unread may always be sent one message, so a result larger than
    /// the budget still goes. libzmq holds what a peer does not read: this is what bounds it.
    private var unread: [[UInt8]: UnreadBytes] = [:]
    private(set) var unreadTotal = 0
    private(set) var repliesDropped = 0
    private let unreadBudget: Int
    private let unreadTotalBudget: Int

    struct UnreadBytes {
        var bytes = 0
        /// Messages dropped since it was last sent RESUME.
        var dropped = 0
        /// Whether it was told (ERROR) that its replies are dropped.
        var told = false
    }

    init(frontend: Socket, backend: Socket, dispatchBatch: Int, logger: Logger, holdsFrontend: Bool,
         unreadBudget: Int = 64 << 20, unreadTotalBudget: Int = 256 << 20) {
        self.unreadBudget = unreadBudget
        self.unreadTotalBudget = unreadTotalBudget
        self.holdsFrontend = holdsFrontend
        self.frontend = frontend
        self.backend = backend
        self.dispatchBatch = dispatchBatch
        self.logger = logger
    }

    var hasPending: Bool { !dispatchPending.isEmpty || !outgoingResults.isEmpty }

    func dispatch(_ task: TaskRecord, attempt: UInt32, timeoutMilliseconds: UInt32, to consumer: ConsumerRecord) {
        let meta = DispatchMeta(attempt: attempt, timeoutMilliseconds: timeoutMilliseconds,
                                traceparent: task.options.traceparent, tracestate: task.options.tracestate)
        if consumer.pending == nil {
            consumer.pending = OutgoingMessage(to: consumer.key, .dispatch, version: consumer.version)
            dispatchPending.append(consumer)
        }
        consumer.pending!.append(task.id)
        consumer.pending!.append(task.name)
        consumer.pending!.append(task.args)
        consumer.pending!.append(meta)
        consumer.pendingGroups += 1
        if consumer.pendingGroups >= dispatchBatch || consumer.pending!.isFull, let message = consumer.takePending() {
            sendDispatch(message, to: consumer)
        }
    }

    func revoke(_ id: String, on consumer: ConsumerRecord) {
        if let message = consumer.takePending() { sendDispatch(message, to: consumer) }
        var message = OutgoingMessage(to: consumer.key, .revoke, version: consumer.version)
        message.append(id)
        transmit(message, on: .backend)
    }

    func result(id: String, _ stored: StoredResult, to key: [UInt8], redelivery: Bool) {
        let full = Self.appendResult(id: id, stored, to: &outgoingResults[
            key, default: OutgoingMessage(to: key, .result, version: producerVersions[key] ?? .current)])
        if full, let message = outgoingResults.removeValue(forKey: key) {
            send(message, on: .frontend)
        }
    }

    func accepted(_ id: Frame, to key: [UInt8], route: Frame, version: ProtocolVersion) {
        if outgoingAccepted[key].map({ $0.version != version }) == true, let earlier = outgoingAccepted.removeValue(forKey: key) {
            send(earlier, on: .frontend)
        }
        if Self.append(id, to: &outgoingAccepted[key, default: OutgoingMessage(to: route, .accepted, version: version)]),
           let message = outgoingAccepted.removeValue(forKey: key) {
            send(message, on: .frontend)
        }
    }

    func rejected(_ id: String, reason: String, to key: [UInt8], route: Frame, version: ProtocolVersion) {
        if outgoingRejected[key].map({ $0.version != version }) == true, let earlier = outgoingRejected.removeValue(forKey: key) {
            send(earlier, on: .frontend)
        }
        if Self.append(id, reason, to: &outgoingRejected[key, default: OutgoingMessage(to: route, .rejected, version: version)]),
           let message = outgoingRejected.removeValue(forKey: key) {
            send(message, on: .frontend)
        }
    }

    func producer(_ key: [UInt8], speaks version: ProtocolVersion) {
        producerVersions[key] = version == .current ? nil : version
        // Results gathered in the version it spoke before go now, in that version (a peer that
        // switches versions between two messages of one turn).
        if outgoingResults[key].map({ $0.version != version }) == true, let earlier = outgoingResults.removeValue(forKey: key) {
            send(earlier, on: .frontend)
        }
    }

    func send(_ message: OutgoingMessage, on side: BrokerSide) {
        // Counted when made, not when sent: what waits for the journal is held for the peer too.
        if side == .frontend, let route = message.routingID, !withinBudget(message, to: Array(route)) { return }
        if holdsFrontend && side == .frontend && Self.waitsForJournal(message.command) {
            turnFrontend.append(message)
            return
        }
        transmit(message, on: side)
    }

    private func transmit(_ message: OutgoingMessage, on side: BrokerSide) {
        do {
            try message.send(on: side == .frontend ? frontend : backend, flags: .dontWait)
        } catch {
            // An unreachable producer keeps its results in the store for `status` and resubmits.
            failedSendLog.log(logger, "could not deliver a message", metadata: ["error": "\(error)"])
        }
    }

    /// Counts `message` against its connection's unread bytes; `false` (and the message dropped)
    /// when that would pass its budget or the total's.
    private func withinBudget(_ message: OutgoingMessage, to key: [UInt8]) -> Bool {
        let size = message.deliveredByteCount
        var entry = unread[key, default: UnreadBytes()]
        if entry.bytes > 0, entry.bytes + size > unreadBudget || unreadTotal + size > unreadTotalBudget {
            entry.dropped += 1
            repliesDropped += 1
            if !entry.told {
                entry.told = true
                var error = OutgoingMessage(to: key, .error, version: message.version)
                error.append("replies to this connection are dropped: it has not read \(entry.bytes) bytes the broker sent (each connection may hold \(unreadBudget) unread, all together \(unreadTotalBudget)); read what was sent and report it with READ, and the broker resumes")
                _ = try? error.send(on: frontend, flags: .dontWait)
                failedSendLog.log(logger, "a producer does not read its replies: dropping them", metadata: [
                    "unread_bytes": "\(entry.bytes)", "unread_total": "\(unreadTotal)",
                ])
            }
            unread[key] = entry
            return false
        }
        entry.bytes += size
        unreadTotal += size
        unread[key] = entry
        return true
    }

    func isDropping(to key: [UInt8]) -> Bool { unread[key]?.told == true }

    func dropped(to key: [UInt8]) {
        guard unread[key] != nil else { return }
        unread[key]!.dropped += 1
        repliesDropped += 1
    }

    func producer(_ key: [UInt8], read bytes: Int?) {
        guard var entry = unread[key] else { return }
        guard let bytes else {
            // A new connection: what was queued for the old one is gone with it, and the producer
            // resubmits what it has no answer for.
            unreadTotal -= entry.bytes
            unread[key] = nil
            return
        }
        let read = min(max(0, bytes), entry.bytes)
        entry.bytes -= read
        unreadTotal -= read
        if entry.told, entry.bytes <= unreadBudget / 2 {
            entry.told = false
            if entry.dropped > 0 {
                var resume = OutgoingMessage(to: key, .resume)
                resume.append(#"{"dropped":\#(entry.dropped)}"#)
                entry.dropped = 0
                _ = try? resume.send(on: frontend, flags: .dontWait)
            }
        }
        unread[key] = entry.bytes == 0 && entry.dropped == 0 && !entry.told ? nil : entry
    }

    static func waitsForJournal(_ command: Command) -> Bool {
        switch command {
        case .accepted, .result, .statusReply, .cancelReply, .deadLettersReply, .purgeReply, .pauseReply, .scheduleReply, .limitReply, .tasksReply: true
        default: false
        }
    }

    /// Messages to producers gathered in this turn wait for journal batch `batch`.
    func hold(until batch: UInt64) {
        guard !turnFrontend.isEmpty else { return }
        for message in turnFrontend { held.append((batch, message)) }
        turnFrontend.removeAll(keepingCapacity: true)
    }

    /// Sends the held messages whose batch is written, in the order they were made.
    func release(upTo batch: UInt64) {
        while let first = held.first, first.batch <= batch {
            held.removeFirst()
            transmit(first.message, on: .frontend)
        }
    }

    /// Messages waiting for the journal.
    var heldCount: Int { held.count }

    /// Consumers whose DISPATCH could not be sent since the last call.
    func takeUnreachable() -> [ConsumerRecord] {
        defer { unreachable.removeAll(keepingCapacity: true) }
        return unreachable
    }

    /// Sends everything gathered in this turn.
    func flush() {
        let dispatches = dispatchPending
        dispatchPending.removeAll(keepingCapacity: true)
        for consumer in dispatches {
            if let message = consumer.takePending() { sendDispatch(message, to: consumer) }
        }
        let results = outgoingResults
        outgoingResults.removeAll(keepingCapacity: true)
        for message in results.values { send(message, on: .frontend) }
        let accepted = outgoingAccepted, rejected = outgoingRejected
        outgoingAccepted.removeAll(keepingCapacity: true)
        outgoingRejected.removeAll(keepingCapacity: true)
        for message in accepted.values { send(message, on: .frontend) }
        for message in rejected.values { send(message, on: .frontend) }
    }

    private func sendDispatch(_ message: OutgoingMessage, to consumer: ConsumerRecord) {
        consumer.lastSent = monotonicNanoseconds()
        do {
            try message.send(on: backend)
        } catch {
            logger.warning("consumer unreachable; requeueing its tasks", metadata: [
                "consumer.pid": "\(consumer.info.pid)", "error": "\(error)",
            ])
            consumer.unreachable = true
            unreachable.append(consumer)
        }
    }

    /// Appends a result; returns whether the message is now full.
    private static func appendResult(id: String, _ stored: StoredResult, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        message.append(stored.status.rawValue)
        message.append(stored.body)
        message.append(stored.info)
        return message.fieldCount >= OutgoingLimits.resultFields || message.isFull
    }

    // Each appends one group and says whether the message should go now: well under the
    // receivers' limit of `Envelope.maxGroups` groups, or at its size target.

    private static func append(_ id: Frame, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        return message.fieldCount >= OutgoingLimits.acknowledgementFields || message.isFull
    }

    private static func append(_ id: String, _ reason: String, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        message.append(reason)
        return message.fieldCount >= OutgoingLimits.acknowledgementFields || message.isFull
    }
}

/// When a gathered message goes out before the end of the turn.
enum OutgoingLimits {
    /// RESULT messages: 256 results of 4 fields.
    static let resultFields = 4 * 256
    /// ACCEPTED and REJECTED messages.
    static let acknowledgementFields = 4096
}

extension ConsumerRecord {
    /// The gathered DISPATCH message, if any, leaving none behind.
    func takePending() -> OutgoingMessage? {
        defer {
            pending = nil
            pendingGroups = 0
        }
        return pending
    }
}
