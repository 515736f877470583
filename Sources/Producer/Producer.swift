public import ConveyorProtocol
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
    private let idPrefix: String
    private let counter = Atomic<UInt64>(0)

    public init(configuration: ProducerConfiguration = .init(),
                logger: Logger = Logger(label: "conveyor.producer")) throws {
        self.configuration = configuration
        self.logger = logger
        self.context = try Context()
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        idPrefix = String(random, radix: 36)
        routingID = Array("producer-\(idPrefix)".utf8)
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

    /// A new task id: unique to this producer, ordered by submission.
    public func makeTaskID() -> String {
        "\(idPrefix)-\(counter.add(1, ordering: .relaxed).newValue)"
    }

    /// Submits a task whose args are JSON text. Waits for a window slot, then for the broker to
    /// accept the task.
    /// - Parameter id: the task id; a new one by default. Submitting an id again is safe: the
    ///   broker treats it as the same task.
    /// - Throws: ``ProducerError/rejected(id:reason:)``, ``ProducerError/brokerTimeout(endpoint:waited:)``.
    public func submit(_ name: String, json args: RawJSON, options: TaskOptions = .default,
                       id: String? = nil) async throws -> TaskHandle {
        let id = id ?? makeTaskID()
        if let pending = state.withLock({ $0.tasks[id]?.cell }) {
            // Already in flight from this producer: the same task, so the same handle.
            return TaskHandle(id: id, producer: self, cell: pending)
        }
        try await acquireSlot()
        let cell = TaskCell()
        let now = monotonicNanoseconds()
        let pending = PendingTask(
            id: id, name: name, args: args.bytes, options: options, cell: cell,
            acceptDeadline: now + configuration.requestTimeout.nanoseconds,
            resultDeadline: now + UInt64(options.timeoutMilliseconds) * 1_000_000 + configuration.resultGrace.nanoseconds)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enum Outcome { case queued, closed, duplicate(CheckedContinuation<Void, any Error>?) }
            let outcome = state.withLock { state -> Outcome in
                guard !state.closed else { return .closed }
                if let earlier = state.tasks[id] {
                    // Submitted again from another Swift task while this one waited for a slot:
                    // the same task, so follow the earlier submission and give this slot back.
                    cell.follow(earlier.cell)
                    return .duplicate(releaseSlot(&state))
                }
                var pending = pending
                pending.acceptWaiter = continuation
                state.tasks[id] = pending
                state.deadlines.insert(Deadline(at: pending.acceptDeadline, id: id, isAcceptance: true))
                state.deadlines.insert(Deadline(at: pending.resultDeadline, id: id, isAcceptance: false))
                state.requests.append(.submit(id))
                return .queued
            }
            switch outcome {
            case .queued:
                wakeup.signal()
            case .closed:
                continuation.resume(throwing: ProducerError.closed)
            case .duplicate(let slotWaiter):
                slotWaiter?.resume()
                continuation.resume()
            }
        }
        return TaskHandle(id: id, producer: self, cell: cell)
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

    private func acquireSlot() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Void, ProducerError>? in
                if state.closed { return .failure(.closed) }
                if state.inFlight < configuration.window {
                    state.inFlight += 1
                    return .success(())
                }
                state.windowWaiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Frees a window slot, handing it straight to a waiting submitter if there is one.
    private func releaseSlot(_ state: inout State) -> CheckedContinuation<Void, any Error>? {
        if let waiter = state.windowWaiters.popFirst() { return waiter }
        state.inFlight -= 1
        return nil
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
                        let ids = state.withLock { Array($0.tasks.keys) }
                        if !ids.isEmpty {
                            logger.info("reconnected to the broker; resubmitting", metadata: ["tasks": "\(ids.count)"])
                            try send(ids.map { .submit($0) }, on: socket)
                        }
                    }
                }
            }
            if poller.isReadable(socketIndex) {
                var handled = 0
                while handled < 512, let frames = try socket.receiveMultipart(flags: .dontWait) {
                    handled += 1
                    handle(frames)
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
            case .submit(let id):
                guard let task = state.withLock({ $0.tasks[id] }) else { continue }
                if submit == nil { submit = OutgoingMessage(.submit) }
                submit!.append(id)
                submit!.append(task.name)
                submit!.append(task.options == .default ? [] : task.options.encoded)
                submit!.append(task.args)
                groups += 1
                if groups >= configuration.batch {
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

    private func handle(_ frames: [Message]) {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames: frames, fromRouter: false)
        } catch {
            logger.warning("bad message from broker dropped", metadata: ["error": "\(error)"])
            return
        }
        switch envelope.command {
        case .accepted:
            let waiters = state.withLock { state in
                envelope.body.compactMap { frame -> CheckedContinuation<Void, any Error>? in
                    let id = frame.string
                    let waiter = state.tasks[id]?.acceptWaiter
                    state.tasks[id]?.acceptWaiter = nil
                    state.tasks[id]?.accepted = true
                    return waiter
                }
            }
            waiters.forEach { $0.resume() }
        case .rejected:
            for group in envelope.groups {
                let id = group[group.startIndex].string
                let reason = group[group.startIndex + 1].string
                let error = ProducerError.rejected(id: id, reason: reason)
                let result = TaskResult(id: id, status: .rejected,
                                        body: RawJSON(JSONText.errorBody(.rejected, reason)), info: nil)
                finishTask(id, with: result, acceptError: error)
            }
        case .result:
            for group in envelope.groups {
                let base = group.startIndex
                let id = group[base].string
                let status = TaskStatus(rawValue: group[base + 1].string) ?? .error
                let info = try? JSONDecoder().decode(ResultInfo.self, from: Data(group[base + 3].bytes))
                finishTask(id, with: TaskResult(id: id, status: status, body: RawJSON(bytes: group[base + 2].bytes), info: info),
                           acceptError: nil)
            }
        case .statusReply:
            let id = envelope[0].string
            let state = TaskState(rawValue: envelope[1].string) ?? .unknown
            var result: TaskResult?
            if state == .done, let status = TaskStatus(rawValue: envelope[2].string) {
                let info = try? JSONDecoder().decode(ResultInfo.self, from: Data(envelope[4].bytes))
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

    /// Delivers a task's outcome: to whoever awaits acceptance (with `acceptError`, as a thrown
    /// error) and to the task's cell; frees its window slot.
    private func finishTask(_ id: String, with result: TaskResult, acceptError: ProducerError?) {
        let (task, slotWaiter) = state.withLock { state -> (PendingTask?, CheckedContinuation<Void, any Error>?) in
            guard let task = state.tasks.removeValue(forKey: id) else { return (nil, nil) }
            return (task, releaseSlot(&state))
        }
        guard let task else { return }
        slotWaiter?.resume()
        if let waiter = task.acceptWaiter {
            if let acceptError { waiter.resume(throwing: acceptError) } else { waiter.resume() }
        }
        task.cell.complete(result)
    }

    private func expire(now: UInt64) {
        let expired = state.withLock { state -> [(String, Bool, Double)] in
            var expired: [(String, Bool, Double)] = []
            if state.deadlines.count > 4 * state.tasks.count + 65_536 {
                // Entries of finished tasks wait until they come due: drop them once they dominate.
                let tasks = state.tasks
                state.deadlines = Heap(state.deadlines.unordered.filter { tasks[$0.id] != nil })
            }
            while let next = state.deadlines.min, next.at < now {
                state.deadlines.removeMin()
                guard let task = state.tasks[next.id] else { continue }
                if next.isAcceptance {
                    if !task.accepted && next.at == task.acceptDeadline { expired.append((task.id, true, 0)) }
                } else if next.at == task.resultDeadline {
                    expired.append((task.id, false, Double(task.options.timeoutMilliseconds) / 1000))
                }
            }
            return expired
        }
        for (id, unaccepted, seconds) in expired {
            if unaccepted {
                let error = ProducerError.brokerTimeout(endpoint: configuration.broker, waited: configuration.requestTimeout)
                finishTask(id, with: TaskResult(id: id, status: .timeout,
                                                body: RawJSON(JSONText.errorBody(.timeout, error.description)), info: nil),
                           acceptError: error)
            } else {
                let text = "no result from the broker within the task's timeout of \(seconds) s plus \(configuration.resultGrace)"
                finishTask(id, with: TaskResult(id: id, status: .timeout, body: RawJSON(JSONText.errorBody(.timeout, text)), info: nil),
                           acceptError: nil)
            }
        }
        let timeout = ProducerError.brokerTimeout(endpoint: configuration.broker, waited: configuration.requestTimeout)
        let (statuses, cancels, stats) = state.withLock { state in
            (state.statusWaiters.expire(now: now), state.cancelWaiters.expire(now: now),
             state.statsWaiters.expire(now: now) + state.adminWaiters.expire(now: now))
        }
        statuses.forEach { $0.continuation.resume(throwing: timeout) }
        cancels.forEach { $0.continuation.resume(throwing: timeout) }
        stats.forEach { $0.continuation.resume(throwing: timeout) }
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
            }
            return (Array(state.tasks.values), Array(state.windowWaiters), state.statusWaiters.values.flatMap { $0 },
                    state.cancelWaiters.values.flatMap { $0 }, Array(state.statsWaiters) + Array(state.adminWaiters))
        }
        for task in tasks {
            task.acceptWaiter?.resume(throwing: error)
            task.cell.complete(TaskResult(id: task.id, status: .error,
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
    case submit(String)
    case status(String)
    case cancel(String)
    case stats
    case deadLetters(action: String, id: String)
}

struct Deadline: Comparable, Sendable {
    let at: UInt64
    let id: String
    let isAcceptance: Bool
    static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.at < rhs.at }
}

struct Waiter<T: Sendable>: Sendable {
    let continuation: CheckedContinuation<T, any Error>
    let deadline: UInt64
}

struct PendingTask: Sendable {
    let id: String
    let name: String
    let args: [UInt8]
    let options: TaskOptions
    let cell: TaskCell
    let acceptDeadline: UInt64
    let resultDeadline: UInt64
    var accepted = false
    var acceptWaiter: CheckedContinuation<Void, any Error>?
}

struct State: Sendable {
    var tasks: [String: PendingTask] = [:]
    var requests: [Request] = []
    var inFlight = 0
    var windowWaiters = Deque<CheckedContinuation<Void, any Error>>()
    var statusWaiters: [String: [Waiter<TaskStatusReport>]] = [:]
    var cancelWaiters: [String: [Waiter<CancelOutcome>]] = [:]
    var statsWaiters = Deque<Waiter<RawJSON>>()
    var adminWaiters = Deque<Waiter<RawJSON>>()
    /// Acceptance and result deadlines of pending tasks, soonest first (stale entries are skipped).
    var deadlines = Heap<Deadline>()
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
