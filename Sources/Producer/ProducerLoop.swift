import ConveyorProtocol
import ConveyorSystem
import Foundation
import ZeroMQ

/// The I/O thread: poll, send what the table's outbox holds, read the broker's messages and hand
/// them to the table, feed the socket monitor's events to the ``ConnectionState``. Every decision
/// is taken in those two; this file only moves bytes.
extension Producer {
    /// How long one poll waits at most, and how often deadlines are checked.
    private static let tick: Duration = .milliseconds(50)
    /// Messages read in one turn at most, so that sending is not held up by a flood of results.
    private static let receiveBurst = 512
    /// libzmq's queue limits (`ZMQ_SNDHWM`, `ZMQ_RCVHWM`) for the DEALER, in messages.
    private static let highWaterMark: Int32 = 100_000
    /// Bytes read after which a READ goes at once (else once a heartbeat interval): well under
    /// the broker's budget of unread bytes per connection (64 MiB by default).
    private static let readReportBytes = 1 << 20

    /// Runs until shutdown, on the thread ``run()`` made for it. Owns the context, the socket and
    /// its monitor, which never leave this thread.
    func ioLoop() throws {
        let context = try Context()
        let socket = try makeSocket(context)
        // A dead connection (broker killed, host gone, process frozen) is found by ZMTP heartbeats
        // (set in makeSocket()), and libzmq reconnects by itself; the monitor says when. A broker
        // that is merely busy keeps answering ZMTP PINGs from its I/O thread, so it is not mistaken
        // for a dead one. The monitor is attached before `zmq_connect`: a local connection can be
        // up before this thread's next call, and its CONNECTED event would be lost.
        let monitor = try SocketMonitor(socket)
        try socket.connect(configuration.broker)
        var connection = ConnectionState()
        _ = try? connection.handle(.start)
        var busyLog = RateLimitedLog(interval: 5_000_000_000)
        defer { _ = try? connection.handle(.close) }
        var poller = Poller()
        let socketIndex = poller.add(socket)
        let wakeIndex = poller.add(fileDescriptor: wakeup.readDescriptor)
        let monitorIndex = poller.add(monitor)
        var nextTick = monotonicNanoseconds()
        var received = Multipart()
        var reads = ReadReports(interval: min(configuration.heartbeatInterval, .seconds(1)).nanoseconds)
        while true {
            try poller.poll(timeout: Self.tick)
            if poller.isReadable(wakeIndex) { wakeup.reset() }
            try reconnectIfRefused(socket)
            let (requests, closed) = table.withLock { ($0.takeOutbox(), $0.isClosed) }
            if closed || stop.isSet {
                _ = try? OutgoingMessage(.disconnect).send(on: socket, flags: .dontWait)
                return
            }
            if !requests.isEmpty {
                try send(requests, on: socket)
            }
            if poller.isReadable(monitorIndex) {
                while let event = try monitor.next(timeout: .zero) {
                    try follow(event, connection: &connection, socket: socket, reads: &reads)
                }
            }
            if poller.isReadable(socketIndex) {
                var handled = 0
                while handled < Self.receiveBurst, try socket.receiveMultipart(into: &received, flags: .dontWait) {
                    handled += 1
                    reads.unreported += received.byteCount
                    switch handle(received) {
                    case .handled: break
                    case .resubmit: try resubmitPending(on: socket, reason: "the broker dropped replies while this producer did not read; resubmitting")
                    case .readRefused: reads.brokerTakesReads = false
                    case .hello(let body):
                        let held = brokerSaidHello(body)
                        if !held.isEmpty { try send(held, on: socket) }
                    }
                }
                if reads.unreported >= Self.readReportBytes { reads.report(on: socket, now: monotonicNanoseconds()) }
            }
            let now = monotonicNanoseconds()
            reads.reportIfDue(on: socket, now: now)
            let overdue = heldPastTheirWait(now: now)
            if !overdue.isEmpty { try send(overdue, on: socket) }
            if now >= nextTick {
                nextTick = now + Self.tick.nanoseconds
                var alive = false
                if case .connected = connection.phase { alive = true }
                let completions = table.withLock { $0.expire(now: now, brokerAlive: alive) }
                if let first = completions.unconfirmed.first {
                    busyLog.log(logger, "no answer yet from the broker within the request timeout; it is busy, and the tasks may still run: waiting for their results until their deadlines", metadata: [
                        "tasks": "\(completions.unconfirmed.count)", "task.id": "\(first)",
                        "broker": "\(configuration.broker)",
                    ])
                }
                completions.perform()
            }
        }
    }

    /// A DEALER with the producer's routing id, queue limits, heartbeats and CURVE keys, not
    /// connected yet.
    private func makeSocket(_ context: Context) throws -> Socket {
        let socket = try Socket(context, type: .dealer)
        try socket.set(.linger, 0)
        try socket.set(.routingID, routingID)
        try socket.set(.sendHighWaterMark, Self.highWaterMark)
        try socket.set(.receiveHighWaterMark, Self.highWaterMark)
        try socket.set(.reconnectInterval, 1000)
        try socket.set(.reconnectIntervalMax, 8000)
        // A DEALER whose connection libzmq gave up (a handshake the broker refused) has no peer,
        // and a send to no peer blocks: never for more than a second on this thread.
        try socket.set(.sendTimeout, 1000)
        if let serverKey = configuration.curveServerKey {
            let keys = try configuration.curveClientKeys ?? CurveKeyPair.generate()
            try socket.set(.curveServerKey, serverKey)
            try socket.set(.curvePublicKey, keys.publicKey)
            try socket.set(.curveSecretKey, keys.secretKey)
        }
        let interval = Int32(clamping: configuration.heartbeatInterval.milliseconds)
        try socket.set(.heartbeatInterval, interval)
        try socket.set(.heartbeatTimeout, interval * Int32(clamping: configuration.liveness))
        return socket
    }

    /// One monitor event through the connection state machine, and what it asks for.
    private func follow(_ event: SocketEvent, connection: inout ConnectionState, socket: Socket,
                        reads: inout ReadReports) throws {
        noteReachability(event, phase: connection.phase)
        let change: ConnectionState.Event
        switch event.kind {
        case .connected: change = .connected
        case .disconnected: change = .disconnected
        case .handshakeFailedAuth:
            refused(status: event.value)
            return
        default: return
        }
        let action: ConnectionState.Action
        do {
            action = try connection.handle(change)
        } catch {
            logger.warning("connection event out of order", metadata: ["error": "\(error)"])
            return
        }
        // Every new connection asks the broker's limits (it may be another broker now).
        if change == .connected { sendHello(on: socket) }
        switch action {
        case .none:
            logger.debug("connection to the broker", metadata: ["state": "\(connection.phase)"])
        case .resubmitPending:
            // A new connection may be to a new broker (restarted, in memory): resend what has no
            // result yet. What the old connection had not read is gone with it.
            reads.connected(on: socket)
            try resubmitPending(on: socket, reason: "reconnected to the broker; resubmitting")
        }
    }

    private func resubmitPending(on socket: Socket, reason: String) throws {
        let pending = table.withLock { $0.pendingSubmissions() }
        logger.info("\(reason)", metadata: ["tasks": "\(pending.count)"])
        if !pending.isEmpty { try send(pending, on: socket) }
    }

    /// What one message from the broker asks of the I/O loop beyond the table.
    enum Handled {
        case handled
        /// RESUME: replies were dropped; resend what has no answer.
        case resubmit
        /// The broker does not know READ (one from before it): stop sending it.
        case readRefused
        /// The broker's HELLO, with its limits.
        case hello(Frame)
    }

    private func send(_ requests: [Request], on socket: Socket) throws {
        if refusesSending() || failWhileUnreachable() { return }
        var submit: OutgoingMessage?
        var groups = 0
        var refused: [Outcome] = []
        defer { if !refused.isEmpty { table.withLock { $0.finish(refused) }.perform() } }
        for request in requests {
            switch request {
            case .submit(let id, let task):
                // Every allowed limit is 1 KiB or more: smaller args need no look at it.
                if task.args.count > 1024 {
                    switch checkSize(request, id: id, size: task.args.count, now: monotonicNanoseconds()) {
                    case .send: break
                    case .held: continue
                    case .refused(let outcome):
                        refused.append(outcome)
                        continue
                    }
                }
                if let refusal = Self.refusal(of: task.options, id: id) {
                    refused.append(refusal)
                    continue
                }
                if submit == nil { submit = OutgoingMessage(.submit) }
                submit!.append(id)
                submit!.append(task.name)
                submit!.append(task.options)
                submit!.append(task.args)
                groups += 1
                if groups >= configuration.batch || submit!.isFull {
                    try submit!.send(on: socket)
                    submit = nil
                    groups = 0
                }
            case .status(let id):
                var message = OutgoingMessage(.status)
                message.append(id)
                try message.send(on: socket)
            case .cancel(let id):
                var message = OutgoingMessage(.cancel)
                message.append(id)
                try message.send(on: socket)
            case .stats:
                try OutgoingMessage(.stats).send(on: socket)
            case .deadLetters(let action, let id):
                var message = OutgoingMessage(.deadLetters)
                message.append(action.rawValue)
                message.append(id)
                try message.send(on: socket)
            case .purge(let name):
                var message = OutgoingMessage(.purge)
                message.append(name)
                try message.send(on: socket)
            case .admin(let command, let frames):
                var message = OutgoingMessage(command)
                for frame in frames { message.append(frame) }
                try message.send(on: socket)
            case .tasks(let query):
                var message = OutgoingMessage(.tasks)
                message.append(query)
                try message.send(on: socket)
            }
        }
        if let submit { try submit.send(on: socket) }
    }

    /// One message from the broker, decoded and handed to the table.
    private func handle(_ frames: Multipart) -> Handled {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: false)
        } catch .unsupportedVersion(let tag) {
            // A broker of another protocol version: nothing sent will be answered. Say so now
            // rather than after the request timeout.
            let error = ProducerError.protocolError(
                "the broker speaks protocol \(tag); this producer speaks \(ProtocolTag.currentText)")
            logger.error("broker speaks another protocol version", metadata: ["broker.protocol": "\(tag)"])
            table.withLock { $0.failUnanswered(with: error) }.perform()
            return .handled
        } catch {
            logger.warning("bad message from broker dropped", metadata: ["error": "\(error)"])
            return .handled
        }
        switch envelope.command {
        case .error where envelope[0].count > 8 && envelope[0].string.hasPrefix("refused "):
            answerRefusal(envelope[0].string)
        case .accepted:
            table.withLock { $0.accepted(envelope.body.lazy.map(\.string)) }.perform()
        case .rejected:
            let outcomes = envelope.groups.map { group in
                let id = group[group.startIndex].string
                let reason = group[group.startIndex + 1].string
                let result = TaskResult(id: id, status: .rejected, kind: .rejected, message: reason)
                return Outcome(result: result, acceptError: ProducerError.rejected(id: id, reason: reason))
            }
            table.withLock { $0.finish(outcomes) }.perform()
        case .result:
            let outcomes = envelope.groups.map { group in
                let base = group.startIndex
                var id = group[base].string
                var submitted: String?
                // `SUBMITTED HELD`: the result of the task whose uniqueness key a submit matched.
                if let space = id.utf8.firstIndex(of: 0x20) {
                    submitted = String(id[..<space])
                    id = String(id[id.index(after: space)...])
                }
                return Outcome(result: Self.result(id: id, status: group[base + 1],
                                                   body: group[base + 2], info: group[base + 3]),
                               acceptError: nil, submittedID: submitted)
            }
            table.withLock { $0.finish(outcomes) }.perform()
        case .statusReply:
            let id = envelope[0].string
            table.withLock { $0.answer(.status(id), with: Self.statusReport(envelope)) }.perform()
        case .cancelReply:
            let id = envelope[0].string
            let text = envelope[1].string
            let outcome = CancelOutcome(wire: text)
            let reply: Result<Reply, ProducerError> = outcome != .unrecognized ? .success(.cancel(outcome))
                : .failure(.unexpectedReply("the broker answered the cancel of \(id) with '\(text)', which this producer does not know"))
            table.withLock { $0.answer(.cancel(id), with: reply) }.perform()
        case .statsReply:
            table.withLock { $0.answer(.statistics, with: .success(.statistics(RawJSON(bytes: envelope[0].bytes)))) }.perform()
        case .deadLettersReply:
            table.withLock { $0.answer(.deadLetters, with: .success(.deadLetters(RawJSON(bytes: envelope[0].bytes)))) }.perform()
        case .purgeReply:
            table.withLock { $0.answer(.purge, with: .success(.purge(RawJSON(bytes: envelope[0].bytes)))) }.perform()
        case .tasksReply:
            table.withLock { $0.answer(.tasks, with: .success(.tasks(RawJSON(bytes: envelope[0].bytes)))) }.perform()
        case .pauseReply, .scheduleReply, .limitReply:
            let key = ReplyKey.admin(Command(rawValue: envelope.command.rawValue - 0x10)!)
            table.withLock { $0.answer(key, with: .success(.admin(RawJSON(bytes: envelope[0].bytes)))) }.perform()
        case .hello:
            return .hello(envelope[0])
        case .heartbeat, .disconnect:
            break
        case .error where envelope.refusesVersion(.current):
            // A broker of an older version answered in its own: nothing sent will be answered.
            let tag = envelope.version.tagText
            logger.error("broker speaks another protocol version", metadata: ["broker.protocol": "\(tag)"])
            let error = ProducerError.protocolError(
                "the broker speaks protocol \(tag); this producer speaks \(ProtocolTag.currentText)")
            table.withLock { $0.failUnanswered(with: error) }.perform()
        case .error where envelope[0].string == "unknown command 0x" + String(Command.read.rawValue, radix: 16):
            logger.debug("the broker does not take READ reports", metadata: ["error": "\(envelope[0].string)"])
            return .readRefused
        case .error where envelope[0].string == "unknown command 0x" + String(Command.tasks.rawValue, radix: 16):
            table.withLock { $0.answer(.tasks, with: .failure(brokerLacksTasks())) }.perform()
        case .error where ["unknown command 0xc", "unknown command 0xd", "unknown command 0xe"].contains(envelope[0].string):
            let command = Command(rawValue: UInt8(envelope[0].string.dropFirst("unknown command 0x".count), radix: 16)!)!
            table.withLock { $0.answer(.admin(command), with: .failure(brokerLacks(command))) }.perform()
        case .error where envelope[0].string.contains(" is not a consumer command;"):
            // Connected to a broker's backend: nothing sent here will ever be answered.
            wrongPort()
        case .error:
            logger.error("broker reported a protocol error", metadata: ["error": "\(envelope[0].string)"])
        case .notice:
            let notice = try? JSONDecoder().decode(Notice.self, from: Data(envelope[0].bytes))
            let text = notice?.notice ?? envelope[0].string
            if let onNotice = configuration.onNotice {
                onNotice(notice?.id ?? "", text)
            } else {
                logger.warning("\(text)", metadata: ["task.id": "\(notice?.id ?? "")"])
            }
        case .resume:
            logger.warning("the broker dropped replies while this producer did not read them", metadata: [
                "broker.said": "\(envelope[0].string)",
            ])
            return .resubmit
        default:
            logger.warning("unexpected command from broker", metadata: ["command": "\(envelope.command)"])
        }
        return .handled
    }

    /// A result's fields as a ``TaskResult``. A status this producer does not know (a newer
    /// broker's) is not guessed at: the task ends as `error`, its message naming the status.
    static func result(id: String, status: Frame, body: Frame, info: Frame) -> TaskResult {
        let known = status.withUnsafeBytes { TaskStatus(bytes: $0) }
        guard known != .unrecognized else {
            return TaskResult(id: id, status: .error, body: RawJSON(unknownStatusBody(status.string)), info: resultInfo(info))
        }
        return TaskResult(id: id, status: known, body: RawJSON(bytes: body.bytes), info: resultInfo(info))
    }

    /// `{"error": ...}` for a result status this producer does not know; no `kind`, since what
    /// happened to the task is exactly what is not known.
    static func unknownStatusBody(_ status: String) -> String {
        #"{"error":\#(JSONText.quoted("the broker sent the result status '\(status)', which this producer (protocol \(ProtocolTag.currentText)) does not know"))}"#
    }

    /// A `STATUS_REPLY` as a report, or an error naming a state or status this producer does not know.
    static func statusReport(_ envelope: Envelope) -> Result<Reply, ProducerError> {
        let id = envelope[0].string
        let stateText = envelope[1].string
        let state = TaskState(wire: stateText)
        guard state != .unrecognized else {
            return .failure(.unexpectedReply("the broker answered the status of \(id) with the state '\(stateText)', which this producer does not know"))
        }
        var result: TaskResult?
        if state == .done {
            result = Self.result(id: id, status: envelope[2], body: envelope[3], info: envelope[4])
        }
        var dueAt: UInt64?
        if state == .scheduled, envelope[4].count > 0 {
            dueAt = (try? JSONDecoder().decode(DueAt.self, from: Data(envelope[4].bytes)))?.dueAt
        }
        return .success(.status(TaskStatusReport(id: id, state: state, result: result, dueAt: dueAt)))
    }

    /// The info frame of a result: parsed by hand when it is in the form consumers write, by
    /// `JSONDecoder` otherwise; `nil` when empty or unreadable.
    private static func resultInfo(_ frame: Frame) -> ResultInfo? {
        if let info = frame.withUnsafeBytes({ ResultInfo(parsing: $0) }) { return info }
        guard frame.count > 0 else { return nil }
        return try? JSONDecoder().decode(ResultInfo.self, from: Data(frame.bytes))
    }
}

/// The info frame of a `scheduled` task's `STATUS_REPLY`.
private struct DueAt: Decodable {
    let dueAt: UInt64
    enum CodingKeys: String, CodingKey { case dueAt = "due_at" }
}

/// The body of a `NOTICE`.
private struct Notice: Decodable {
    let id: String
    let notice: String
}
