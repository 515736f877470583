public import ConveyorProtocol
import ConveyorSystem
import DequeModule
import HeapModule
import Foundation
public import Logging
import Synchronization
import ZeroMQ

/// Submits tasks to a broker and hands back their results.
///
/// One I/O thread owns the DEALER socket; `async` callers on any thread leave requests in a
/// locked queue and wake it through a pipe. Many Swift tasks may submit at once; the
/// ``ProducerConfiguration/window`` bounds the tasks in flight, and a broker that does not answer
/// gives ``ProducerError/brokerTimeout(endpoint:waited:)``, never a hang.
///
/// ```swift
/// let producer = try Producer(configuration: .init(broker: "tcp://127.0.0.1:5555"))
/// let handle = try await producer.submit("echo", json: #"{"hello": 1}"#)
/// print(try await handle.result().body)
/// ```
public final class Producer: Sendable {
    public let configuration: ProducerConfiguration
    private let logger: Logger
    private let context: Context
    private let state = Mutex(State())
    private let wakeup = Wakeup()
    private let finished = DispatchSemaphore(value: 0)
    private let routingID: [UInt8]
    /// The first 8 bytes of every task id this producer makes.
    private let idPrefix: [UInt8]
    private let counter = Atomic<UInt64>(0)

    public init(configuration: ProducerConfiguration = .init(),
                logger: Logger = Logger(label: "conveyor.producer")) throws {
        precondition(configuration.window > 0, "a producer's window must be at least 1")
        precondition(configuration.batch > 0, "a producer's batch must be at least 1")
        self.configuration = configuration
        self.logger = logger
        self.context = try Context()
        var generator = SystemRandomNumberGenerator()
        // A letter first, so that no id starts with "-" (a command line would take it for an
        // option) or "_"; then 7 characters of the 64: 47 random bits in all.
        let random = generator.next() as UInt64
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        idPrefix = [letters[Int(random % UInt64(letters.count))]] + Self.idCharacters(random >> 8, count: 7)
        routingID = Array("producer-".utf8) + idPrefix
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-prod")
            do {
                try ioLoop()
            } catch {
                logger.error("producer loop failed", metadata: ["error": "\(error)"])
            }
            failEverything(with: .closed)
            finished.signal()
        }
        thread.start()
    }

    /// Stops the I/O thread; pending calls fail with ``ProducerError/closed``.
    public func close() {
        let wasOpen = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard wasOpen else { return }
        wakeup.signal()
        finished.wait()
        finished.signal()
    }

    // MARK: Public API

    /// A new task id: 8 characters of a random 48-bit prefix of this producer and a 7-character
    /// counter, from a 64-character alphabet in ASCII order, so one producer's ids sort in
    /// submission order. 15 bytes, because Swift keeps strings of up to 15 UTF-8 bytes inline:
    /// such an id costs no allocation and compares without `memcmp` in every process it crosses.
    public func makeTaskID() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 15) { buffer in
            for i in 0..<8 { buffer[i] = idPrefix[i] }
            for i in 0..<7 { buffer[8 + i] = Self.idAlphabet[Int((number >> (6 * UInt64(6 - i))) & 63)] }
            return 15
        }
    }

    private static let idAlphabet = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

    /// The low `6 × count` bits of `value`, most significant first, one character per 6 bits.
    private static func idCharacters(_ value: UInt64, count: Int) -> [UInt8] {
        (0..<count).reversed().map { idAlphabet[Int((value >> (6 * UInt64($0))) & 63)] }
    }

    /// Submits a task whose args are JSON text. Waits for a window slot, then for the broker to
    /// accept the task.
    /// - Parameter id: the task id; a new one by default. Submitting an id again is safe: the
    ///   broker treats it as the same task, and while it is in flight from this producer the
    ///   same handle comes back.
    /// - Throws: ``ProducerError/rejected(id:reason:)``, ``ProducerError/brokerTimeout(endpoint:waited:)``.
    public func submit(_ name: String, json args: RawJSON, options: TaskOptions = .default,
                       id: String? = nil) async throws -> TaskHandle {
        try await submit([TaskSubmission(name, json: args, options: options, id: id)], throwingTaskErrors: true)[0]
    }

    /// Submits many tasks at once: one lock, one wake-up of the I/O thread and one wait for the
    /// broker's answers per window's worth, instead of one each. Waits for window slots (a batch
    /// larger than the window goes in window-sized parts), then until the broker has answered every
    /// task. Handles come back in the order of `tasks`.
    ///
    /// Unlike ``submit(_:json:options:id:)`` this does not throw for one task's refusal: a task
    /// the broker rejects, or does not answer within the request timeout, gets a `rejected` or
    /// `timeout` result in its handle, so the handles of the others are not lost.
    /// - Throws: ``ProducerError/closed`` only.
    public func submit(batch tasks: [TaskSubmission]) async throws -> [TaskHandle] {
        try await submit(tasks, throwingTaskErrors: false)
    }

    /// Submits a task and waits for its result, with one suspension instead of two (the
    /// broker's acceptance wakes no one): the shortest round trip, for request/response use.
    /// A refused task, or one the broker does not answer, comes back as a `rejected` or
    /// `timeout` result, as with ``submit(batch:)``.
    /// - Throws: ``ProducerError/closed`` only.
    public func run(_ name: String, json args: RawJSON, options: TaskOptions = .default,
                    id: String? = nil) async throws -> TaskResult {
        let handles = try await enqueue([TaskSubmission(name, json: args, options: options, id: id)], group: nil)
        return await handles[0].result()
    }

    /// Submits a task whose args are JSON text and waits for its result (see ``run(_:json:options:id:)``).
    public func run(_ name: String, json: String, options: TaskOptions = .default,
                    id: String? = nil) async throws -> TaskResult {
        try await run(name, json: RawJSON(json), options: options, id: id)
    }

    private func submit(_ submissions: [TaskSubmission], throwingTaskErrors: Bool) async throws -> [TaskHandle] {
        let group = AcceptGroup(throwsTaskErrors: throwingTaskErrors)
        let handles = try await enqueue(submissions, group: group)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Void, any Error>? in
                guard group.remaining > 0 else { return group.outcome }
                group.continuation = continuation
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
        return handles
    }

    /// Takes window slots and hands the tasks to the I/O thread, `group` (if any) counting the
    /// broker's answers.
    private func enqueue(_ submissions: [TaskSubmission], group: AcceptGroup?) async throws -> [TaskHandle] {
        var handles: [TaskHandle] = []
        handles.reserveCapacity(submissions.count)
        let grace = configuration.resultGrace.nanoseconds
        var start = submissions.startIndex
        while start < submissions.endIndex {
            let chunk = submissions[start..<min(start + configuration.window, submissions.endIndex)]
            start = chunk.endIndex
            try await acquireSlots(chunk.count)
            // Deadlines count from now, after any wait for the window: that wait is not the task's.
            let now = monotonicNanoseconds()
            let acceptDeadline = now + configuration.requestTimeout.nanoseconds
            let resumed = try state.withLock { state throws(ProducerError) -> [CheckedContinuation<Void, any Error>] in
                guard !state.closed else { throw .closed }
                var duplicates = 0
                for submission in chunk {
                    let id = submission.id ?? makeTaskID()
                    if let earlier = state.tasks[id] {
                        // Already in flight from this producer: the same task, so the same handle.
                        handles.append(TaskHandle(id: id, producer: self, cell: earlier.cell))
                        duplicates += 1
                        continue
                    }
                    let cell = TaskCell()
                    let resultDeadline = now + UInt64(submission.options.timeoutMilliseconds) * 1_000_000 + grace
                    let task = PendingTask(
                        cell: cell, name: submission.name, args: submission.args.bytes, options: submission.options,
                        acceptDeadline: acceptDeadline, resultDeadline: resultDeadline, group: group)
                    state.tasks[id] = task
                    group?.remaining += 1
                    state.acceptDeadlines.append((acceptDeadline, id))
                    state.deadlines.insert(Deadline(at: resultDeadline, id: id))
                    state.requests.append(.submit(id: id, task))
                    handles.append(TaskHandle(id: id, producer: self, cell: cell))
                }
                return releaseSlots(&state, count: duplicates)
            }
            resumed.forEach { $0.resume() }
            wakeup.signal()
        }
        return handles
    }

    /// Submits a task whose args are JSON text.
    public func submit(_ name: String, json: String, options: TaskOptions = .default,
                       id: String? = nil) async throws -> TaskHandle {
        try await submit(name, json: RawJSON(json), options: options, id: id)
    }

    /// Submits a task whose args are any `Encodable` value.
    public func submit<Args: Encodable>(_ name: String, _ args: Args, options: TaskOptions = .default,
                                         id: String? = nil) async throws -> TaskHandle {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try await submit(name, json: RawJSON(bytes: Array(try encoder.encode(args))), options: options, id: id)
    }

    /// Asks the broker where a task stands.
    public func status(id: String) async throws -> TaskStatusReport {
        try await request(.status(id)) { state, waiter in state.statusWaiters[id, default: []].append(waiter) }
    }

    /// Asks the broker to cancel a task; only a queued task can be cancelled.
    public func cancel(id: String) async throws -> CancelOutcome {
        try await request(.cancel(id)) { state, waiter in state.cancelWaiters[id, default: []].append(waiter) }
    }

    /// The broker's statistics, as JSON text.
    public func stats() async throws -> RawJSON {
        try await request(.stats) { state, waiter in state.statsWaiters.append(waiter) }
    }

    /// Requeues (`"requeue"`) or purges (`"purge"`) the dead letter `id`, or all of them when
    /// `id` is `nil`. Answers `{"action": ..., "count": n}`.
    public func deadLetters(_ action: String, id: String? = nil) async throws -> RawJSON {
        try await request(.deadLetters(action: action, id: id ?? "")) { state, waiter in state.adminWaiters.append(waiter) }
    }

    // MARK: Waiting

    /// Takes `count` window slots (at most the window), waiting in line while they are not free.
    private func acquireSlots(_ count: Int) async throws {
        let window = configuration.window
        let taken = try state.withLock { state throws(ProducerError) -> Bool in
            guard !state.closed else { throw .closed }
            guard state.windowWaiters.isEmpty, state.inFlight + count <= window else { return false }
            state.inFlight += count
            return true
        }
        if taken { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Void, ProducerError>? in
                if state.closed { return .failure(.closed) }
                if state.windowWaiters.isEmpty, state.inFlight + count <= window {
                    state.inFlight += count
                    return .success(())
                }
                state.windowWaiters.append((count, continuation))
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Frees `count` window slots and hands them to the submitters waiting first in line, whose
    /// continuations come back to be resumed outside the lock.
    private func releaseSlots(_ state: inout State, count: Int) -> [CheckedContinuation<Void, any Error>] {
        state.inFlight -= count
        var resumed: [CheckedContinuation<Void, any Error>] = []
        while let first = state.windowWaiters.first, state.inFlight + first.count <= configuration.window {
            state.inFlight += first.count
            resumed.append(state.windowWaiters.removeFirst().continuation)
        }
        return resumed
    }

    private func request<T: Sendable>(
        _ request: Request, register: (inout State, Waiter<T>) -> Void
    ) async throws -> T {
        let deadline = monotonicNanoseconds() + configuration.requestTimeout.nanoseconds
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let open = state.withLock { state -> Bool in
                guard !state.closed else { return false }
                register(&state, Waiter(continuation: continuation, deadline: deadline))
                state.requests.append(request)
                return true
            }
            if open { wakeup.signal() } else { continuation.resume(throwing: ProducerError.closed) }
        }
    }

    // MARK: The I/O thread

    private func connect() throws -> Socket {
        let socket = try Socket(context, type: .dealer)
        try socket.set(.linger, 0)
        try socket.set(.routingID, routingID)
        try socket.set(.sendHighWaterMark, 100_000)
        try socket.set(.receiveHighWaterMark, 100_000)
        try socket.set(.reconnectInterval, 1000)
        try socket.set(.reconnectIntervalMax, 8000)
        if let serverKey = configuration.curveServerKey {
            let keys = try CurveKeyPair.generate()
            try socket.set(.curveServerKey, serverKey)
            try socket.set(.curvePublicKey, keys.publicKey)
            try socket.set(.curveSecretKey, keys.secretKey)
        }
        let interval = Int32(clamping: configuration.heartbeatInterval.milliseconds)
        try socket.set(.heartbeatInterval, interval)
        try socket.set(.heartbeatTimeout, interval * Int32(clamping: configuration.liveness))
        try socket.connect(configuration.broker)
        return socket
    }

    private func ioLoop() throws {
        let socket = try connect()
        // A dead connection (broker killed, host gone, process frozen) is found by ZMTP heartbeats
        // (set in connect()), and libzmq reconnects by itself. Every new connection may be to a new
        // broker (restarted, in memory): resend what has no result yet. Safe, since the broker
        // treats a known id as the same task. A broker that is merely busy keeps answering ZMTP
        // PINGs from its I/O thread, so it is not mistaken for a dead one.
        let monitor = try SocketMonitor(socket)
        var connections = 0
        var poller = Poller()
        let socketIndex = poller.add(socket)
        let wakeIndex = poller.add(fileDescriptor: wakeup.readDescriptor)
        let monitorIndex = poller.add(monitor)
        var nextTick = monotonicNanoseconds()
        var received = Multipart()
        while true {
            try poller.poll(timeout: .milliseconds(50))
            if poller.isReadable(wakeIndex) { wakeup.reset() }
            let (requests, closed) = state.withLock { state in
                defer { state.requests.removeAll(keepingCapacity: true) }
                return (state.requests, state.closed)
            }
            if closed {
                _ = try? OutgoingMessage(.disconnect).send(on: socket, flags: .dontWait)
                return
            }
            if !requests.isEmpty {
                try send(requests, on: socket)
            }
            if poller.isReadable(monitorIndex) {
                while let event = try monitor.next(timeout: .zero) {
                    guard event.kind == .connected else { continue }
                    connections += 1
                    if connections > 1 {
                        let pending = state.withLock { $0.tasks.map { Request.submit(id: $0.key, $0.value) } }
                        if !pending.isEmpty {
                            logger.info("reconnected to the broker; resubmitting", metadata: ["tasks": "\(pending.count)"])
                            try send(pending, on: socket)
                        }
                    }
                }
            }
            if poller.isReadable(socketIndex) {
                var handled = 0
                while handled < 512, try socket.receiveMultipart(into: &received, flags: .dontWait) {
                    handled += 1
                    handle(received)
                }
            }
            let now = monotonicNanoseconds()
            if now >= nextTick {
                nextTick = now + 50_000_000
                expire(now: now)
            }
        }
    }

    private func send(_ requests: [Request], on socket: Socket) throws {
        var submit: OutgoingMessage?
        var groups = 0
        for request in requests {
            switch request {
            case .submit(let id, let task):
                if submit == nil { submit = OutgoingMessage(.submit) }
                submit!.append(id)
                submit!.append(task.name)
                submit!.append(task.options == .default ? [] : task.options.encoded)
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
                message.append(action)
                message.append(id)
                try message.send(on: socket)
            }
        }
        if let submit { try submit.send(on: socket) }
    }

    private func handle(_ frames: Multipart) {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: false)
        } catch .unsupportedVersion(let tag) {
            // A broker of another protocol version: nothing sent will be answered. Say so now
            // rather than after the request timeout.
            let error = ProducerError.protocolError(
                "the broker speaks protocol \(tag); this producer speaks \(ProtocolTag.currentText)")
            logger.error("broker speaks another protocol version", metadata: ["broker.protocol": "\(tag)"])
            failUnanswered(with: error)
            return
        } catch {
            logger.warning("bad message from broker dropped", metadata: ["error": "\(error)"])
            return
        }
        switch envelope.command {
        case .accepted:
            let resumptions = state.withLock { state in
                envelope.body.compactMap { frame -> Resumption? in
                    let id = frame.string
                    guard let task = state.tasks[id], !task.accepted else { return nil }
                    task.accepted = true
                    guard let group = task.group else { return nil }
                    task.group = nil
                    return group.settle(error: nil)
                }
            }
            resumptions.forEach { $0.resume() }
        case .rejected:
            finish(envelope.groups.map { group in
                let id = group[group.startIndex].string
                let reason = group[group.startIndex + 1].string
                let result = TaskResult(id: id, status: .rejected,
                                        body: RawJSON(JSONText.errorBody(.rejected, reason)), info: nil)
                return Outcome(result: result, acceptError: ProducerError.rejected(id: id, reason: reason))
            })
        case .result:
            finish(envelope.groups.map { group in
                let base = group.startIndex
                let id = group[base].string
                let status = TaskStatus(rawValue: group[base + 1].string) ?? .error
                let info = Self.resultInfo(group[base + 3])
                return Outcome(result: TaskResult(id: id, status: status, body: RawJSON(bytes: group[base + 2].bytes), info: info),
                               acceptError: nil)
            })
        case .statusReply:
            let id = envelope[0].string
            let state = TaskState(rawValue: envelope[1].string) ?? .unknown
            var result: TaskResult?
            if state == .done, let status = TaskStatus(rawValue: envelope[2].string) {
                let info = Self.resultInfo(envelope[4])
                result = TaskResult(id: id, status: status, body: RawJSON(bytes: envelope[3].bytes), info: info)
            }
            let report = TaskStatusReport(id: id, state: state, result: result)
            let waiter = self.state.withLock { $0.statusWaiters[id]?.isEmpty == false ? $0.statusWaiters[id]!.removeFirst() : nil }
            waiter?.continuation.resume(returning: report)
        case .cancelReply:
            let id = envelope[0].string
            let outcome = CancelOutcome(rawValue: envelope[1].string) ?? .unknown
            let waiter = state.withLock { $0.cancelWaiters[id]?.isEmpty == false ? $0.cancelWaiters[id]!.removeFirst() : nil }
            waiter?.continuation.resume(returning: outcome)
        case .statsReply:
            let waiter = state.withLock { $0.statsWaiters.popFirst() }
            waiter?.continuation.resume(returning: RawJSON(bytes: envelope[0].bytes))
        case .deadLettersReply:
            let waiter = state.withLock { $0.adminWaiters.popFirst() }
            waiter?.continuation.resume(returning: RawJSON(bytes: envelope[0].bytes))
        case .heartbeat, .disconnect:
            break
        case .error:
            logger.error("broker reported a protocol error", metadata: ["error": "\(envelope[0].string)"])
        default:
            logger.warning("unexpected command from broker", metadata: ["command": "\(envelope.command)"])
        }
    }

    /// The info frame of a result: parsed by hand when it is in the form consumers write, by
    /// `JSONDecoder` otherwise.
    private static func resultInfo(_ frame: Frame) -> ResultInfo? {
        if let info = frame.withUnsafeBytes({ ResultInfo(parsing: $0) }) { return info }
        return try? JSONDecoder().decode(ResultInfo.self, from: Data(frame.bytes))
    }

    /// Delivers tasks' outcomes, all under one lock: to the submit call still waiting for the
    /// broker's answer (with the error, if any) and to each task's cell; frees their window slots.
    /// Cells complete and waiters resume outside the lock.
    /// A task's end as the I/O thread learns it. (A struct rather than a tuple: arrays of tuples
    /// look their type metadata up at run time, on every result message.)
    private struct Outcome {
        let result: TaskResult
        /// What a submit still waiting for the broker's answer throws.
        let acceptError: ProducerError?
    }

    private func finish(_ outcomes: [Outcome]) {
        guard !outcomes.isEmpty else { return }
        let (cells, resumptions, slotWaiters) = state.withLock { state in
            var cells: [(TaskCell, TaskResult)] = []
            var resumptions: [Resumption] = []
            cells.reserveCapacity(outcomes.count)
            for outcome in outcomes {
                let (result, acceptError) = (outcome.result, outcome.acceptError)
                guard let task = state.tasks.removeValue(forKey: result.id) else { continue }
                if let group = task.group, let resumption = group.settle(error: acceptError) {
                    resumptions.append(resumption)
                }
                cells.append((task.cell, result))
            }
            return (cells, resumptions, releaseSlots(&state, count: cells.count))
        }
        slotWaiters.forEach { $0.resume() }
        resumptions.forEach { $0.resume() }
        for (cell, result) in cells { cell.complete(result) }
    }

    private func expire(now: UInt64) {
        let expired = state.withLock { state -> [(String, Bool, Double)] in
            var expired: [(String, Bool, Double)] = []
            if state.deadlines.count > 4 * state.tasks.count + 65_536 {
                // Entries of finished tasks wait until they come due: drop them once they dominate.
                let tasks = state.tasks
                state.deadlines = Heap(state.deadlines.unordered.filter { tasks[$0.id] != nil })
            }
            // Acceptance deadlines are in submission order, which is (nearly) the order the broker
            // answers in: the front holds what is still unanswered, answered ones leave it at once.
            while let first = state.acceptDeadlines.first {
                if let task = state.tasks[first.id], !task.accepted, first.at == task.acceptDeadline {
                    guard first.at < now else { break }
                    expired.append((first.id, true, 0))
                }
                state.acceptDeadlines.removeFirst()
            }
            while let next = state.deadlines.min, next.at < now {
                state.deadlines.removeMin()
                guard let task = state.tasks[next.id], next.at == task.resultDeadline else { continue }
                expired.append((next.id, false, Double(task.options.timeoutMilliseconds) / 1000))
            }
            return expired
        }
        let timeout = ProducerError.brokerTimeout(endpoint: configuration.broker, waited: configuration.requestTimeout)
        finish(expired.map { id, unaccepted, seconds in
            if unaccepted {
                return Outcome(result: TaskResult(id: id, status: .timeout, body: RawJSON(JSONText.errorBody(.timeout, timeout.description)), info: nil),
                               acceptError: timeout)
            }
            let text = "no result from the broker within the task's timeout of \(seconds) s plus \(configuration.resultGrace)"
            return Outcome(result: TaskResult(id: id, status: .timeout, body: RawJSON(JSONText.errorBody(.timeout, text)), info: nil),
                           acceptError: nil)
        })
        let (statuses, cancels, stats) = state.withLock { state in
            (state.statusWaiters.expire(now: now), state.cancelWaiters.expire(now: now),
             state.statsWaiters.expire(now: now) + state.adminWaiters.expire(now: now))
        }
        statuses.forEach { $0.continuation.resume(throwing: timeout) }
        cancels.forEach { $0.continuation.resume(throwing: timeout) }
        stats.forEach { $0.continuation.resume(throwing: timeout) }
    }

    /// Fails what the broker has not answered: tasks not accepted yet (their submit calls throw
    /// `error`, their handles get an `error` result) and status, cancel, stats and dead-letter
    /// requests. Accepted tasks keep waiting for their results.
    private func failUnanswered(with error: ProducerError) {
        let unaccepted = state.withLock { state in
            state.tasks.compactMap { id, task in task.accepted ? nil : id }
        }
        finish(unaccepted.map { id in
            Outcome(result: TaskResult(id: id, status: .error, body: RawJSON(JSONText.errorBody(.rejected, error.description)), info: nil),
                    acceptError: error)
        })
        let (statuses, cancels, others) = state.withLock { state in
            defer {
                state.statusWaiters.removeAll()
                state.cancelWaiters.removeAll()
                state.statsWaiters.removeAll()
                state.adminWaiters.removeAll()
            }
            return (state.statusWaiters.values.flatMap { $0 }, state.cancelWaiters.values.flatMap { $0 },
                    Array(state.statsWaiters) + Array(state.adminWaiters))
        }
        statuses.forEach { $0.continuation.resume(throwing: error) }
        cancels.forEach { $0.continuation.resume(throwing: error) }
        others.forEach { $0.continuation.resume(throwing: error) }
    }

    private func failEverything(with error: ProducerError) {
        let (tasks, windowWaiters, statuses, cancels, stats) = state.withLock { state in
            state.closed = true
            defer {
                state.tasks.removeAll()
                state.windowWaiters.removeAll()
                state.statusWaiters.removeAll()
                state.cancelWaiters.removeAll()
                state.statsWaiters.removeAll()
                state.adminWaiters.removeAll()
                state.deadlines = Heap()
                state.acceptDeadlines = []
            }
            let tasks = state.tasks.map { id, task in (id, task.cell, task.group?.settle(error: error)) }
            return (tasks, state.windowWaiters.map(\.continuation), state.statusWaiters.values.flatMap { $0 },
                    state.cancelWaiters.values.flatMap { $0 }, Array(state.statsWaiters) + Array(state.adminWaiters))
        }
        for (id, cell, resumption) in tasks {
            resumption?.resume()
            cell.complete(TaskResult(id: id, status: .error,
                                     body: RawJSON(JSONText.errorBody(.consumerLost, error.description)), info: nil))
        }
        windowWaiters.forEach { $0.resume(throwing: error) }
        statuses.forEach { $0.continuation.resume(throwing: error) }
        cancels.forEach { $0.continuation.resume(throwing: error) }
        stats.forEach { $0.continuation.resume(throwing: error) }
    }
}

// MARK: - State

enum Request: Sendable {
    /// The task as it was pending when the request was made (what the SUBMIT frames carry).
    case submit(id: String, PendingTask)
    case status(String)
    case cancel(String)
    case stats
    case deadLetters(action: String, id: String)
}

/// When a pending task's result is due at the latest.
struct Deadline: Comparable, Sendable {
    let at: UInt64
    let id: String
    static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.at < rhs.at }
}

struct Waiter<T: Sendable>: Sendable {
    let continuation: CheckedContinuation<T, any Error>
    let deadline: UInt64
}

/// A task submitted and not finished. A class, so that the I/O thread's lookups and updates
/// touch one reference instead of copying (and retaining) every field.
final class PendingTask: @unchecked Sendable {
    // @unchecked Sendable: the `let`s never change; `group` and `accepted` are read and written
    // only while `Producer.state` is locked (the task lives in `State.tasks`).
    let cell: TaskCell
    let name: String
    let args: [UInt8]
    let options: TaskOptions
    let acceptDeadline: UInt64
    let resultDeadline: UInt64
    /// The submit call waiting for the broker's answer, if any; `nil` once the broker answered.
    var group: AcceptGroup?
    var accepted = false

    init(cell: TaskCell, name: String, args: [UInt8], options: TaskOptions,
         acceptDeadline: UInt64, resultDeadline: UInt64, group: AcceptGroup?) {
        self.cell = cell
        self.name = name
        self.args = args
        self.options = options
        self.acceptDeadline = acceptDeadline
        self.resultDeadline = resultDeadline
        self.group = group
    }
}

/// One submit call (a task or a batch) waiting until the broker has answered each of its tasks.
final class AcceptGroup: @unchecked Sendable {
    // @unchecked Sendable: every field is read and written only while `Producer.state` is locked.
    var remaining = 0
    var continuation: CheckedContinuation<Void, any Error>?
    /// The first error to throw: a refused task for a single submit, or `closed` for any.
    var error: ProducerError?
    let throwsTaskErrors: Bool

    init(throwsTaskErrors: Bool) { self.throwsTaskErrors = throwsTaskErrors }

    var outcome: Result<Void, any Error> {
        if let error { .failure(error) } else { .success(()) }
    }

    /// One task answered (`error` is `nil` when accepted). Returns the waiter to resume outside
    /// the lock once every task is answered.
    func settle(error: ProducerError?) -> Resumption? {
        if let error, self.error == nil, throwsTaskErrors || error == .closed { self.error = error }
        remaining -= 1
        guard remaining == 0, let continuation else { return nil }
        self.continuation = nil
        return Resumption(continuation: continuation, outcome: outcome)
    }
}

struct Resumption {
    let continuation: CheckedContinuation<Void, any Error>
    let outcome: Result<Void, any Error>
    func resume() { continuation.resume(with: outcome) }
}

struct State: Sendable {
    var tasks: [String: PendingTask] = [:]
    var requests: [Request] = []
    var inFlight = 0
    /// Submitters waiting for window slots, first come first served, with the slots each needs.
    var windowWaiters = Deque<(count: Int, continuation: CheckedContinuation<Void, any Error>)>()
    var statusWaiters: [String: [Waiter<TaskStatusReport>]] = [:]
    var cancelWaiters: [String: [Waiter<CancelOutcome>]] = [:]
    var statsWaiters = Deque<Waiter<RawJSON>>()
    var adminWaiters = Deque<Waiter<RawJSON>>()
    /// Result deadlines of pending tasks, soonest first (stale entries are skipped).
    var deadlines = Heap<Deadline>()
    /// Acceptance deadlines, in submission order (they are all `requestTimeout` after it).
    var acceptDeadlines = Deque<(at: UInt64, id: String)>()
    var closed = false
}

extension Dictionary where Value: RangeReplaceableCollection {
    fileprivate mutating func expire<T>(now: UInt64) -> [Waiter<T>] where Value == [Waiter<T>] {
        var expired: [Waiter<T>] = []
        for key in keys {
            let (old, keep) = self[key]!.partitioned { $0.deadline < now }
            expired += old
            self[key] = keep.isEmpty ? nil : keep
        }
        return expired
    }
}

extension Deque {
    fileprivate mutating func expire<T>(now: UInt64) -> [Waiter<T>] where Element == Waiter<T> {
        var expired: [Waiter<T>] = []
        while let first, first.deadline < now { expired.append(removeFirst()) }
        return expired
    }
}

extension Array {
    fileprivate func partitioned(by belongsInFirst: (Element) -> Bool) -> ([Element], [Element]) {
        var first: [Element] = [], second: [Element] = []
        for element in self { if belongsInFirst(element) { first.append(element) } else { second.append(element) } }
        return (first, second)
    }
}
