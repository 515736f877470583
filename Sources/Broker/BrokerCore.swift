import ConveyorProtocol
import ConveyorSystem
import DequeModule
import Foundation
import HeapModule
import Logging
import ZeroMQ

/// The broker's state and event loop. Everything here runs on the broker's one I/O thread, which
/// owns both sockets; nothing is shared, so the hot path takes no locks.
final class BrokerCore {
    private let config: BrokerConfiguration
    private let logger: Logger
    let frontend: Socket
    let backend: Socket

    private var tasks: [String: TaskRecord] = [:]
    private var queue = MemoryTaskQueue()
    private var consumers: [[UInt8]: ConsumerRecord] = [:]
    private var consumersByName: [String: [ConsumerRecord]] = [:]
    private var producersSeen: [[UInt8]: UInt64] = [:]
    /// Finished tasks in the order their results are let go.
    private var results: ResultStore<TaskRecord>
    private var deadlines = Heap<TimedTask>()
    private var retries = Heap<TimedTask>()
    private var deadLetters = Deque<DeadLetter>()
    private var sequence: UInt64 = 0
    private var totals = BrokerStatistics.Totals()
    private var badInputLog = RateLimitedLog(interval: 1_000_000_000)
    /// The receive buffer, reused message after message.
    private var received = Multipart()

    // Outgoing messages gathered during one loop turn and sent at its end, one per peer.
    // Consumers with DISPATCH groups gathered in `ConsumerRecord.pending`. The per-peer messages
    // below are appended to in place (`dict[key, default: …]` as an inout argument): a copy taken
    // out and stored back would copy the whole growing message on every append.
    private var dispatchPending: [ConsumerRecord] = []
    private var outgoingResults: [[UInt8]: OutgoingMessage] = [:]
    private var outgoingAccepted: [[UInt8]: OutgoingMessage] = [:]
    private var outgoingRejected: [[UInt8]: OutgoingMessage] = [:]

    private var draining = false
    private let heartbeatNanos: UInt64
    private static let lostDeliveryAttempts: UInt32 = 3

    init(config: BrokerConfiguration, logger: Logger, context: Context) throws {
        self.config = config
        self.logger = logger
        self.results = ResultStore(capacity: config.resultRetentionCount,
                                   retentionNanoseconds: config.resultRetention.nanoseconds)
        self.heartbeatNanos = config.heartbeatInterval.nanoseconds
        frontend = try Socket(context, type: .router)
        backend = try Socket(context, type: .router)
        for socket in [frontend, backend] {
            try socket.set(.linger, 0)
            try socket.set(.routerMandatory, true)
            try socket.set(.routerHandover, true)
            try socket.set(.maxMessageSize, Limits.frameLimit(forMessageSize: config.maxMessageSize))
            try socket.set(.sendHighWaterMark, 100_000)
            try socket.set(.receiveHighWaterMark, 100_000)
            if let secret = config.curveSecretKey {
                try socket.set(.curveServer, true)
                try socket.set(.curveSecretKey, secret)
            }
        }
        try frontend.bind(config.frontend)
        try backend.bind(config.backend)
    }

    // MARK: Event loop

    func run(shouldStop: () -> Bool) throws {
        var poller = Poller()
        let front = poller.add(frontend)
        let back = poller.add(backend)
        var nextTick = monotonicNanoseconds()
        while true {
            if shouldStop() {
                if !draining { beginDrain() }
                break
            }
            try poller.poll(timeout: .milliseconds(50))
            if poller.isReadable(back) { try drain(backend, limit: 512, handler: handleBackend) }
            if poller.isReadable(front) { try drain(frontend, limit: 512, handler: handleFrontend) }
            let now = monotonicNanoseconds()
            if now >= nextTick {
                tick(now: now)
                nextTick = now + 20_000_000
            }
            flush()
        }
        flush()
    }

    private func drain(_ socket: Socket, limit: Int, handler: (Multipart) -> Void) throws {
        var handled = 0
        while handled < limit, try socket.receiveMultipart(into: &received, flags: .dontWait) {
            handler(received)
            handled += 1
        }
    }

    /// Tells consumers to stop and producers that the broker is going away.
    private func beginDrain() {
        draining = true
        // Give the goodbyes below time to leave before the sockets close.
        try? frontend.set(.linger, 1000)
        try? backend.set(.linger, 1000)
        for consumer in consumers.values {
            send(OutgoingMessage(to: consumer.key, .disconnect), on: backend)
        }
        for key in producersSeen.keys {
            send(OutgoingMessage(to: key, .disconnect), on: frontend)
        }
        logger.info("broker stopping", metadata: [
            "tasks.queued": "\(queue.count)", "tasks.running": "\(runningCount)",
        ])
    }

    // MARK: Frontend (producers)

    private func handleFrontend(_ frames: Multipart) {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: true)
        } catch {
            rejectBadInput(frames, error: error, on: frontend, side: "frontend")
            return
        }
        let route = envelope.routingID!
        let key = route.bytes
        producersSeen[key] = monotonicNanoseconds()
        switch envelope.command {
        case .submit:
            for group in envelope.groups { submit(group, from: route, key: key) }
        case .cancel:
            cancel(envelope[0], replyTo: route)
        case .status:
            status(envelope[0], replyTo: route)
        case .stats:
            var reply = OutgoingMessage(to: route, .statsReply)
            reply.append(statsJSON())
            send(reply, on: frontend)
        case .heartbeat:
            send(OutgoingMessage(to: route, .heartbeat), on: frontend)
        case .deadLetters:
            deadLetterAction(envelope[0].string, id: envelope[1].string, replyTo: route)
        case .disconnect:
            producersSeen[key] = nil
        default:
            reply(error: "\(envelope.command) is not a producer command; the frontend takes SUBMIT, CANCEL, STATUS, STATS, DEAD_LETTERS, HEARTBEAT and DISCONNECT",
                  to: route, on: frontend)
        }
    }

    private func submit(_ group: ArraySlice<Frame>, from route: Frame, key: [UInt8]) {
        let base = group.startIndex
        let idFrame = group[base], nameFrame = group[base + 1], optionsFrame = group[base + 2]
        let args = group[base + 3]
        guard let id = identifier(idFrame) else {
            rejectTask(idFrame.string, "task id must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII", to: key, route: route)
            return
        }
        if let existing = tasks[id] {
            // The same id again: a resubmission, safe by design. Follow the producer's new route.
            existing.producer = key
            accept(idFrame, to: key, route: route)
            if existing.state == .done, let stored = existing.result {
                appendResult(id: id, stored, to: key)
            }
            return
        }
        guard let name = identifier(nameFrame) else {
            rejectTask(id, "task name must be 1-\(Limits.maxIdentifierBytes) bytes of visible ASCII", to: key, route: route)
            return
        }
        let options: TaskOptions
        do {
            options = try optionsFrame.withUnsafeBytes { buffer throws(ProtocolError) in try TaskOptions(frame: buffer) }
        } catch {
            rejectTask(id, error.description, to: key, route: route)
            return
        }
        if draining {
            rejectTask(id, "broker is shutting down", to: key, route: route)
            return
        }
        guard args.count <= config.maxMessageSize else {
            rejectTask(id, "args are \(args.count) bytes; the broker takes at most \(config.maxMessageSize) (--max-message-size)",
                       to: key, route: route)
            return
        }
        let consumer = queue.hasWaiting(named: name) ? nil : leastLoadedConsumer(serving: name)
        if consumer == nil && queue.count >= config.maxQueued {
            totals.rejected += 1
            rejectTask(id, "queue full: \(queue.count) tasks queued (--max-queued \(config.maxQueued))", to: key, route: route)
            return
        }
        let now = monotonicNanoseconds()
        sequence += 1
        let task = TaskRecord(id: id, name: name, args: args.bytes, options: options, producer: key,
                              sequence: sequence, now: now)
        tasks[id] = task
        deadlines.insert(TimedTask(at: task.deadline, task: task))
        totals.submitted += 1
        accept(idFrame, to: key, route: route)
        if let consumer {
            dispatch(task, to: consumer)
        } else {
            queue.append(task)
        }
    }

    private func cancel(_ idFrame: Frame, replyTo route: Frame) {
        let id = idFrame.string
        let outcome: CancelOutcome
        if let task = tasks[id] {
            switch task.state {
            case .queued, .delayed:
                let wasQueued = task.state == .queued
                task.state = .done
                if wasQueued { queue.remove(task) }
                totals.cancelled += 1
                finish(task, status: .cancelled, body: JSONText.errorBody(.cancelled, "cancelled while queued"))
                outcome = .cancelled
            case .running:
                outcome = .running
            case .done:
                outcome = .done
            }
        } else {
            outcome = .unknown
        }
        var reply = OutgoingMessage(to: route, .cancelReply)
        reply.append(idFrame)
        reply.append(outcome.rawValue)
        send(reply, on: frontend)
    }

    private func status(_ idFrame: Frame, replyTo route: Frame) {
        let id = idFrame.string
        var reply = OutgoingMessage(to: route, .statusReply)
        reply.append(idFrame)
        let state: TaskState
        switch tasks[id]?.state {
        case .queued?, .delayed?: state = .queued
        case .running?: state = .running
        case .done?: state = .done
        case nil: state = .unknown
        }
        reply.append(state.rawValue)
        if state == .done, let stored = tasks[id]?.result {
            reply.append(stored.status.rawValue)
            reply.append(stored.body)
            reply.append(stored.info)
        } else {
            reply.append([UInt8]())
            reply.append([UInt8]())
            reply.append([UInt8]())
        }
        send(reply, on: frontend)
    }

    // MARK: Backend (consumers)

    private func handleBackend(_ frames: Multipart) {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: true)
        } catch {
            rejectBadInput(frames, error: error, on: backend, side: "backend")
            return
        }
        let route = envelope.routingID!
        let key = route.bytes
        let now = monotonicNanoseconds()
        let consumer = consumers[key]
        consumer?.lastSeen = now
        switch envelope.command {
        case .ready:
            let info: ReadyInfo
            do {
                info = try JSONDecoder().decode(ReadyInfo.self, from: Data(envelope[0].bytes))
            } catch {
                reply(error: "READY body is not a valid consumer announcement: \(error)", to: route, on: backend)
                return
            }
            // Capacity 0 is a draining consumer: it keeps its running tasks and gets no more.
            guard info.capacity >= 0, info.capacity <= Limits.maxCapacity else {
                reply(error: "READY capacity must be 0-100000", to: route, on: backend)
                return
            }
            guard (info.heartbeatMilliseconds ?? 1000) >= 1, (info.heartbeatMilliseconds ?? 1000) <= 60_000 else {
                reply(error: "READY heartbeat_ms must be 1-60000", to: route, on: backend)
                return
            }
            if consumer == nil, info.update == true {
                // A capacity update from a consumer this broker has let go (declared dead, or met
                // before a restart): it must announce itself anew, on a new connection.
                send(OutgoingMessage(to: route, .disconnect), on: backend)
                return
            }
            if let consumer {
                unindex(consumer)
                consumer.info = info
                consumer.names = Set(info.tasks)
                index(consumer)
                refill(consumer)
            } else {
                let record = ConsumerRecord(key: key, info: info, now: now)
                consumers[key] = record
                index(record)
                logger.info("consumer ready", metadata: [
                    "consumer.pid": "\(info.pid)", "consumer.host": "\(info.host)",
                    "consumer.capacity": "\(info.capacity)", "consumer.tasks": "\(info.tasks.count)",
                ])
                refill(record)
            }
        case .done:
            for group in envelope.groups { complete(group, from: consumer, sender: key) }
            if let consumer { refill(consumer) }
            if consumer == nil {
                // A consumer the broker does not know (declared dead, or from before a restart):
                // its results were used above; tell it to announce itself again.
                send(OutgoingMessage(to: route, .disconnect), on: backend)
            }
        case .heartbeat:
            if consumer == nil {
                send(OutgoingMessage(to: route, .disconnect), on: backend)
            }
        case .disconnect:
            if let consumer { remove(consumer, reason: "consumer disconnected") }
        default:
            reply(error: "\(envelope.command) is not a consumer command; the backend takes READY, DONE, HEARTBEAT and DISCONNECT",
                  to: route, on: backend)
        }
    }

    private func complete(_ group: ArraySlice<Frame>, from consumer: ConsumerRecord?, sender: [UInt8]) {
        let base = group.startIndex
        let idFrame = group[base]
        let id = idFrame.string
        guard let status = group[base + 1].withUnsafeBytes({ DoneStatus(bytes: $0) }) else {
            // Not a status this protocol knows: drop the group and leave the task as it was.
            totals.badMessages += 1
            return
        }
        let held = consumer?.inFlight.remove(id) != nil
        if held { consumer?.completed += 1 }
        guard let task = tasks[id], task.state != .done else {
            totals.duplicatesDropped += 1
            return
        }
        let isFinal = status == .ok || status == .error
        // A final result is used from whoever ran the task (a late result from a consumer declared
        // dead still saves a rerun). Hand-backs and retries only count from the consumer holding it.
        let owned: Bool
        if case .running(let owner) = task.state, let consumer, owner == consumer.key { owned = true } else { owned = false }
        guard owned || (isFinal && task.wasDispatched(to: sender)) else {
            totals.duplicatesDropped += 1
            return
        }
        if case .queued = task.state { queue.remove(task) }
        if status == .requeue {
            // Handed back unstarted by a draining consumer: this attempt does not count.
            if task.attempts > 0 { task.attempts -= 1 }
            task.state = .queued
            totals.requeued += 1
            route(task, atFront: true)
            return
        }
        if status == .retry {
            if task.attempts < task.options.maxAttempts {
                let doublings = UInt64(min(max(task.attempts, 1) - 1, 16))
                let backoff = min(UInt64(task.options.retryBackoffMilliseconds) &* 1_000_000, 1 << 46) << doublings
                task.state = .delayed
                task.notBefore = monotonicNanoseconds() &+ backoff
                retries.insert(TimedTask(at: task.notBefore, task: task))
                totals.retried += 1
                return
            }
            task.state = .done
            totals.failed += 1
            let body = group[base + 2].bytes
            if task.options.maxAttempts > 1 {
                let last = (try? JSONDecoder().decode(ErrorText.self, from: Data(body)))?.error ?? "handler failed"
                addDeadLetter(task, reason: "failed \(task.attempts) attempts; last error: \(last)")
            }
            finish(task, status: .error, body: body, info: group[base + 3].bytes)
            return
        }
        task.state = .done
        if status == .ok { totals.succeeded += 1 } else { totals.failed += 1 }
        finish(task, status: status == .ok ? .ok : .error, body: group[base + 2].bytes, info: group[base + 3].bytes)
    }

    // MARK: Dispatch

    private func index(_ consumer: ConsumerRecord) {
        for name in consumer.names { consumersByName[name, default: []].append(consumer) }
    }

    private func unindex(_ consumer: ConsumerRecord) {
        for name in consumer.names {
            consumersByName[name]?.removeAll { $0 === consumer }
            if consumersByName[name]?.isEmpty == true { consumersByName[name] = nil }
        }
    }

    /// Where a task for `name` starts soonest, among the consumers serving it that have credit:
    /// the one with the most idle threads; if none has an idle thread, the one with the fewest
    /// tasks waiting per thread (ties: the most free credit). Not simply the most free credit: a
    /// consumer whose automatic prefetch has grown would draw every task, and the others would
    /// never run enough to measure their own pace.
    private func leastLoadedConsumer(serving name: String) -> ConsumerRecord? {
        guard let candidates = consumersByName[name] else { return nil }
        var best: ConsumerRecord?
        for consumer in candidates where consumer.credit > 0 {
            if let current = best {
                if Self.startsSooner(consumer, than: current) { best = consumer }
            } else {
                best = consumer
            }
        }
        return best
    }

    private static func startsSooner(_ a: ConsumerRecord, than b: ConsumerRecord) -> Bool {
        let threadsA = max(1, a.info.threads), threadsB = max(1, b.info.threads)
        let idleA = threadsA - a.inFlight.count, idleB = threadsB - b.inFlight.count
        if idleA > 0 || idleB > 0 {
            if idleA != idleB { return idleA > idleB }
        } else {
            // Waiting per thread, compared without division: -idleA / threadsA < -idleB / threadsB.
            let left = -idleA * threadsB, right = -idleB * threadsA
            if left != right { return left < right }
        }
        return a.credit > b.credit
    }

    /// Hands out queued tasks that `consumer` serves now that it has credit: each to the consumer
    /// serving its name that is least loaded, which may be another one. (Filling the
    /// reporting consumer first would let whoever reports first, with a large prefetch, take the
    /// whole queue.)
    private func refill(_ consumer: ConsumerRecord) {
        guard !draining else { return }
        // A failed send inside dispatch can remove this consumer: stop as soon as it is gone.
        while consumer.credit > 0, consumers[consumer.key] === consumer,
              let task = queue.popFirst(among: consumer.names) {
            guard let target = leastLoadedConsumer(serving: task.name) else {
                queue.prepend(task)
                return
            }
            dispatch(task, to: target)
        }
    }

    /// Sends the queued or newly routed `task` to `task`'s consumer, and if no consumer has
    /// credit puts it back in the queue.
    private func route(_ task: TaskRecord, atFront: Bool) {
        if !queue.hasWaiting(named: task.name), let consumer = leastLoadedConsumer(serving: task.name) {
            dispatch(task, to: consumer)
        } else if atFront {
            queue.prepend(task)
        } else {
            queue.append(task)
        }
    }

    private func dispatch(_ task: TaskRecord, to consumer: ConsumerRecord) {
        task.state = .running(consumer: consumer.key)
        task.attempts += 1
        task.recordDispatch(to: consumer.key)
        consumer.inFlight.insert(task.id)
        let now = monotonicNanoseconds()
        let remaining = task.deadline > now ? (task.deadline - now) / 1_000_000 : 1
        let meta = DispatchMeta(attempt: task.attempts, timeoutMilliseconds: UInt32(clamping: max(1, remaining)))
        if consumer.pending == nil {
            consumer.pending = OutgoingMessage(to: consumer.key, .dispatch)
            dispatchPending.append(consumer)
        }
        consumer.pending!.append(task.id)
        consumer.pending!.append(task.name)
        consumer.pending!.append(task.args)
        consumer.pending!.append(meta.encoded)
        consumer.pendingGroups += 1
        if consumer.pendingGroups >= config.dispatchBatch || consumer.pending!.isFull, let message = consumer.takePending() {
            sendDispatch(message, to: consumer)
        }
    }

    private func sendDispatch(_ message: OutgoingMessage, to consumer: ConsumerRecord) {
        consumer.lastSent = monotonicNanoseconds()
        do {
            try message.send(on: backend)
        } catch {
            logger.warning("consumer unreachable; requeueing its tasks", metadata: [
                "consumer.pid": "\(consumer.info.pid)", "error": "\(error)",
            ])
            remove(consumer, reason: "consumer unreachable")
        }
    }

    /// Forgets a consumer and puts the tasks it held back at the front of their queues.
    private func remove(_ consumer: ConsumerRecord, reason: String) {
        guard consumers[consumer.key] === consumer else { return }
        consumers[consumer.key] = nil
        consumer.pending = nil
        unindex(consumer)
        logger.warning("consumer removed", metadata: [
            "consumer.pid": "\(consumer.info.pid)", "reason": "\(reason)",
            "tasks.requeued": "\(consumer.inFlight.count)",
        ])
        let held = consumer.inFlight.compactMap { tasks[$0] }.sorted { $0.sequence > $1.sequence }
        consumer.inFlight.removeAll()
        for task in held {
            guard case .running(let owner) = task.state, owner == consumer.key else { continue }
            let limit = max(task.options.maxAttempts, Self.lostDeliveryAttempts)
            if task.attempts >= limit {
                task.state = .done
                totals.failed += 1
                let why = "\(reason) \(task.attempts) time\(task.attempts == 1 ? "" : "s"); attempts exhausted"
                addDeadLetter(task, reason: why)
                finish(task, status: .error, body: JSONText.errorBody(.attemptsExhausted, why))
            } else {
                task.state = .queued
                totals.requeued += 1
                // Newest first, each prepended, so the oldest ends up at the front.
                route(task, atFront: true)
            }
        }
    }

    // MARK: Results

    private func finish(_ task: TaskRecord, status: TaskStatus, body: String) {
        let info = ResultInfo(attempts: Int(task.attempts)).json
        finish(task, status: status, body: Array(body.utf8), info: Array(info.utf8))
    }

    /// Keeps the result on the task's record (for `status` and resubmissions) until the retention
    /// drops it, and sends it to the producer.
    private func finish(_ task: TaskRecord, status: TaskStatus, body: [UInt8], info: [UInt8]) {
        let stored = StoredResult(status: status, body: body, info: info)
        task.result = stored
        task.args = []
        for old in results.insert(task, finishedAt: monotonicNanoseconds()) { forget(old) }
        totals.completed += 1
        appendResult(id: task.id, stored, to: task.producer)
    }

    /// Drops a finished record whose result the retention let go.
    private func forget(_ task: TaskRecord) {
        // The record itself may live on in a deadline entry until that comes due or is compacted
        // away: let its result go now, so the retention bounds the memory results take.
        task.result = nil
        if tasks[task.id] === task, task.state == .done { tasks[task.id] = nil }
    }

    private func appendResult(id: String, _ stored: StoredResult, to key: [UInt8]) {
        let full = Self.appendResult(id: id, stored, to: &outgoingResults[key, default: OutgoingMessage(to: key, .result)])
        if full, let message = outgoingResults.removeValue(forKey: key) {
            send(message, on: frontend)
        }
    }

    /// Appends a result; returns whether the message is now full.
    private static func appendResult(id: String, _ stored: StoredResult, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        message.append(stored.status.rawValue)
        message.append(stored.body)
        message.append(stored.info)
        return message.fieldCount >= 4 * 256 || message.isFull
    }

    private func accept(_ id: Frame, to key: [UInt8], route: Frame) {
        if Self.append(id, to: &outgoingAccepted[key, default: OutgoingMessage(to: route, .accepted)]),
           let message = outgoingAccepted.removeValue(forKey: key) {
            send(message, on: frontend)
        }
    }

    private func rejectTask(_ id: String, _ reason: String, to key: [UInt8], route: Frame) {
        if Self.append(id, reason, to: &outgoingRejected[key, default: OutgoingMessage(to: route, .rejected)]),
           let message = outgoingRejected.removeValue(forKey: key) {
            send(message, on: frontend)
        }
    }

    // Each appends one group and says whether the message should go now: well under the
    // receivers' limit of `Envelope.maxGroups` groups, or at its size target.

    private static func append(_ id: Frame, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        return message.fieldCount >= 4096 || message.isFull
    }

    private static func append(_ id: String, _ reason: String, to message: inout OutgoingMessage) -> Bool {
        message.append(id)
        message.append(reason)
        return message.fieldCount >= 4096 || message.isFull
    }

    private func addDeadLetter(_ task: TaskRecord, reason: String) {
        deadLetters.append(DeadLetter(id: task.id, name: task.name, attempts: task.attempts, reason: reason,
                                      args: task.args, options: task.options, producer: task.producer))
        if deadLetters.count > config.deadLetterCapacity { deadLetters.removeFirst() }
    }

    /// `DEAD_LETTERS`: requeue or purge one dead letter (by id) or all of them.
    private func deadLetterAction(_ action: String, id: String, replyTo requester: Frame) {
        let selected = deadLetters.filter { id.isEmpty || $0.id == id }
        var count = 0
        var error: String?
        switch action {
        case "purge":
            deadLetters.removeAll { id.isEmpty || $0.id == id }
            count = selected.count
        case "requeue":
            deadLetters.removeAll { id.isEmpty || $0.id == id }
            for letter in selected {
                if let current = tasks[letter.id], current.state != .done { continue }
                sequence += 1
                let task = TaskRecord(id: letter.id, name: letter.name, args: letter.args, options: letter.options,
                                      producer: letter.producer, sequence: sequence, now: monotonicNanoseconds())
                tasks[letter.id] = task
                deadlines.insert(TimedTask(at: task.deadline, task: task))
                totals.requeued += 1
                route(task, atFront: false)
                count += 1
            }
        default:
            error = "unknown dead-letter action '\(action)': use requeue or purge"
        }
        var reply = OutgoingMessage(to: requester, .deadLettersReply)
        if let error {
            reply.append(#"{"error":\#(JSONText.quoted(error))}"#)
        } else {
            reply.append(#"{"action":"\#(action)","count":\#(count)}"#)
        }
        send(reply, on: frontend)
    }

    // MARK: Time

    private func tick(now: UInt64) {
        while let next = deadlines.min, next.at <= now {
            deadlines.removeMin()
            let task = next.task
            guard task.state != .done else { continue }
            expire(task)
        }
        while let next = retries.min, next.at <= now {
            retries.removeMin()
            let task = next.task
            guard task.state == .delayed, task.notBefore == next.at else { continue }
            task.state = .queued
            route(task, atFront: true)
        }
        let dead = consumers.values.filter { now &- $0.lastSeen > $0.livenessNanos(broker: heartbeatNanos, liveness: config.liveness) }
        for consumer in dead { remove(consumer, reason: "consumer missed \(config.liveness) heartbeats") }
        for consumer in consumers.values where now &- consumer.lastSent >= heartbeatNanos {
            consumer.lastSent = now
            send(OutgoingMessage(to: consumer.key, .heartbeat), on: backend)
        }
        for old in results.expire(now: now) { forget(old) }
        compactDeadlinesIfNeeded()
        producersSeen = producersSeen.filter { now &- $0.value < config.resultRetention.nanoseconds }
    }

    /// Entries of finished tasks stay in the deadline heap until they come due; at high
    /// throughput with long timeouts that is millions of them. Rebuild the heap from the live
    /// entries once the stale ones dominate.
    private func compactDeadlinesIfNeeded() {
        let active = queue.count + runningCount + retries.count
        guard deadlines.count > 2 * active + 65_536 else { return }
        deadlines = Heap(deadlines.unordered.filter { entry in
            entry.task.state != .done
        })
    }

    private func expire(_ task: TaskRecord) {
        let seconds = Double(task.options.timeoutMilliseconds) / 1000
        let message: String
        switch task.state {
        case .queued, .delayed:
            if task.state == .queued { queue.remove(task) }
            if consumersByName[task.name] == nil {
                message = "timed out after \(seconds) s in the queue: no consumer serves '\(task.name)'"
            } else {
                message = "timed out after \(seconds) s in the queue"
            }
        case .running:
            message = "timed out after \(seconds) s while running (attempt \(task.attempts))"
        case .done:
            return
        }
        task.state = .done
        totals.timedOut += 1
        finish(task, status: .timeout, body: JSONText.errorBody(.timeout, message))
    }

    // MARK: Sending

    private func flush() {
        // Sending can fail (a consumer gone), which requeues its tasks and may route them to
        // another consumer: so take each batch out before sending it, and repeat until nothing new.
        repeat {
            // Work and results first, on the critical path; acknowledgements after.
            let dispatches = dispatchPending
            dispatchPending.removeAll(keepingCapacity: true)
            for consumer in dispatches {
                if let message = consumer.takePending() { sendDispatch(message, to: consumer) }
            }
            let results = outgoingResults
            outgoingResults.removeAll(keepingCapacity: true)
            for message in results.values { send(message, on: frontend) }
            let accepted = outgoingAccepted, rejected = outgoingRejected
            outgoingAccepted.removeAll(keepingCapacity: true)
            outgoingRejected.removeAll(keepingCapacity: true)
            for message in accepted.values { send(message, on: frontend) }
            for message in rejected.values { send(message, on: frontend) }
        } while !dispatchPending.isEmpty || !outgoingResults.isEmpty
    }

    private func send(_ message: OutgoingMessage, on socket: Socket) {
        do {
            try message.send(on: socket, flags: .dontWait)
        } catch {
            // An unreachable producer keeps its results in the store for `status` and resubmits.
            badInputLog.log(logger, "could not deliver a message", metadata: ["error": "\(error)"])
        }
    }

    private func reply(error text: String, to route: Frame, on socket: Socket) {
        var message = OutgoingMessage(to: route, .error)
        message.append(text)
        send(message, on: socket)
    }

    private func rejectBadInput(_ frames: Multipart, error: ProtocolError, on socket: Socket, side: String) {
        totals.badMessages += 1
        badInputLog.log(logger, "bad message dropped", metadata: [
            "side": "\(side)", "error": "\(error)", "frames": "\(frames.count)",
        ])
        if case .notConveyor = error { return }
        guard let route = frames.first, frames.count > 1 else { return }
        reply(error: error.description, to: route, on: socket)
    }

    /// A task id or name: 1-255 bytes of visible ASCII. (Swift strings compare canonically
    /// equivalent Unicode as equal, so non-ASCII ids could collide.)
    private func identifier(_ frame: Frame) -> String? {
        let count = frame.count
        guard count > 0, count <= Limits.maxIdentifierBytes else { return nil }
        let visible = frame.withUnsafeBytes { $0.allSatisfy { $0 > 0x20 && $0 < 0x7F } }
        return visible ? frame.string : nil
    }

    // MARK: Stats

    private var runningCount: Int { consumers.values.reduce(0) { $0 + $1.inFlight.count } }

    func statsJSON() -> String {
        let stats = BrokerStatistics(
            queued: queue.countsByName,
            queuedTotal: queue.count,
            running: runningCount,
            consumers: consumers.values.map {
                BrokerStatistics.Consumer(
                    pid: $0.info.pid, host: $0.info.host, process: $0.info.process, threads: $0.info.threads,
                    capacity: $0.info.capacity, inFlight: $0.inFlight.count, freeCredit: max(0, $0.credit),
                    completed: $0.completed, tasks: $0.info.tasks.sorted())
            }.sorted { ($0.host, $0.pid) < ($1.host, $1.pid) },
            producers: producersSeen.count,
            resultsKept: results.count,
            totals: totals,
            deadLetters: deadLetters.suffix(100).map {
                BrokerStatistics.DeadLetter(id: $0.id, name: $0.name, attempts: $0.attempts, reason: $0.reason)
            },
            deadLetterTotal: deadLetters.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(stats), as: UTF8.self)) ?? "{}"
    }
}

private struct ErrorText: Decodable { let error: String }

/// A task due at a time (its deadline, or the end of a retry backoff). Entries are not removed
/// when a task finishes early; they are skipped when they come due (or compacted away).
struct TimedTask: Comparable {
    let at: UInt64
    let task: TaskRecord
    static func < (lhs: TimedTask, rhs: TimedTask) -> Bool { lhs.at < rhs.at }
    static func == (lhs: TimedTask, rhs: TimedTask) -> Bool { lhs.at == rhs.at && lhs.task === rhs.task }
}

/// Logs at most once per interval, counting what it held back.
struct RateLimitedLog {
    let interval: UInt64
    private var last: UInt64 = 0
    private var suppressed = 0

    init(interval: UInt64) { self.interval = interval }

    mutating func log(_ logger: Logger, _ message: Logger.Message, metadata: Logger.Metadata) {
        let now = monotonicNanoseconds()
        guard now &- last >= interval else {
            suppressed += 1
            return
        }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
        last = now
        suppressed = 0
    }
}
