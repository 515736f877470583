import ConveyorProtocol
import ConveyorSystem
import Foundation
public import Logging
import Synchronization
import ZeroMQ

/// A consumer process's engine: one I/O thread that owns the DEALER socket to the broker, and a
/// ``ThreadPool`` whose worker threads run the handlers. Worker threads never touch the socket;
/// they leave results in a locked outbox and wake the I/O thread through a pipe it polls.
///
/// Credit: the consumer announces `threads + prefetch` in READY; the broker never sends more
/// tasks than that before results come back. With ``Prefetch/automatic(maximum:buffer:)`` the
/// I/O thread measures the handlers and announces a new capacity when the right one changes.
public final class Consumer: Sendable {
    private let configuration: ConsumerConfiguration
    private let registry: TaskRegistry
    private let logger: Logger
    private let context: Context
    private let pool: ThreadPool
    /// Hand-backs of unstarted tasks (from the I/O thread or a shutdown).
    private let outbox = Mutex<[Completed]>([])
    /// One slot per worker thread: its finished results and the task it runs now. Each worker
    /// locks only its own slot, so workers never contend with each other; the I/O thread drains
    /// the outboxes when woken and looks at the running tasks every 100 ms.
    private let slots: [WorkerSlot]

    final class WorkerSlot: Sendable {
        let outbox = Mutex<[Completed]>([])
        /// The task running on this thread, with its hard limit.
        let running = Mutex<(id: String, name: String, limit: UInt64)?>(nil)
    }
    private let wakeup = Wakeup()
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let failure = Mutex<(any Error)?>(nil)
    private let host = hostName()
    private let pid = Int(getpid())

    /// Results a worker gathers before it wakes the I/O thread while it still has prefetched work.
    static let resultBatch = 32
    /// Handlers faster than this on average: the I/O thread briefly waits for the results of work
    /// it just handed out instead of sleeping.
    static let spinBelowNanoseconds: UInt64 = 20_000

    /// The exit status of a consumer process replaced because a handler was stuck past the hard limit.
    public static let stuckExitCode: Int32 = 75

    /// Thrown by ``wait()`` when the broker speaks another protocol version.
    public struct ProtocolMismatch: Error, CustomStringConvertible {
        public let brokerProtocol: String
        public var description: String {
            "the broker speaks protocol \(brokerProtocol); this consumer speaks \(ProtocolTag.currentText)"
        }
    }

    /// Thrown by ``wait()`` when a handler stayed stuck past the hard limit; the process should
    /// exit (with ``stuckExitCode``) rather than join its stuck thread.
    public struct StuckHandler: Error, CustomStringConvertible {
        public let taskID: String
        public let name: String
        public var description: String { "handler for task \(taskID) ('\(name)') is stuck past its hard time limit" }
    }

    /// Thrown by ``wait()`` when a drain gave up on tasks still running after the drain timeout;
    /// the process should exit rather than join their threads.
    public struct DrainTimedOut: Error, CustomStringConvertible {
        public let abandoned: Int
        public var description: String { "drain timed out with \(abandoned) task(s) still running; the broker requeues them" }
    }

    /// A finished task on its way from a worker thread to the I/O thread.
    struct Completed: Sendable {
        let id: String
        let status: String
        let body: [UInt8]
        let info: [UInt8]
        /// How long the handler ran; `nil` for a task handed back unstarted.
        let elapsedNanoseconds: UInt64?
    }

    /// What the I/O thread learns from results about the handlers' pace (for automatic prefetch).
    private struct Pace {
        var tasks: UInt64 = 0
        var nanoseconds: UInt64 = 0
        var since: UInt64 = monotonicNanoseconds()
    }
    private let pace = Mutex(Pace())
    /// Results in the workers' outboxes that the I/O thread has not taken yet.
    private let resultsWaiting = Atomic<Int>(0)
    /// The part of every result's info frame that never changes: `{"host":…,"pid":…,`.
    private let infoPrefix: [UInt8]

    public init(configuration: ConsumerConfiguration, registry: TaskRegistry, logger: Logger) throws {
        precondition(configuration.threads > 0, "a consumer needs at least one thread")
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.context = try Context()
        self.pool = ThreadPool(threads: configuration.threads)
        self.slots = (0..<configuration.threads).map { _ in WorkerSlot() }
        var prefix = Array("{\"host\":\(JSONText.quoted(host)),\"pid\":\(pid),".utf8)
        if let process = configuration.processIndex { prefix += Array("\"process\":\(process),".utf8) }
        self.infoPrefix = prefix
    }

    /// Starts the I/O thread, which connects to the broker and announces the consumer.
    public func start() {
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-io")
            do {
                try ioLoop()
                pool.shutdown(cancelPending: true)
            } catch let error as StuckHandler {
                // Joining the pool would wait forever on the stuck thread: leave it to the process exit.
                failure.withLock { $0 = error }
            } catch let error as DrainTimedOut {
                failure.withLock { $0 = error }
            } catch {
                logger.error("consumer loop failed", metadata: ["error": "\(error)"])
                failure.withLock { $0 = error }
                pool.shutdown(cancelPending: true)
            }
            finished.signal()
        }
        thread.start()
    }

    /// Drains: takes no more work, finishes running tasks and returns their results, hands back
    /// tasks it had not started, then leaves the broker.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
        wakeup.signal()
    }

    /// Waits until the consumer has drained and stopped.
    public func wait() throws {
        finished.wait()
        finished.signal()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    // MARK: The I/O thread

    private func connect() throws -> Socket {
        let socket = try Socket(context, type: .dealer)
        try socket.set(.linger, 2000)
        try socket.set(.maxMessageSize, Limits.frameLimit(forMessageSize: configuration.maxMessageSize))
        try socket.set(.reconnectInterval, 1000)
        try socket.set(.reconnectIntervalMax, 8000)
        try socket.set(.sendHighWaterMark, 100_000)
        try socket.set(.receiveHighWaterMark, 100_000)
        if let serverKey = configuration.curveServerKey {
            let keys = try CurveKeyPair.generate()
            try socket.set(.curveServerKey, serverKey)
            try socket.set(.curvePublicKey, keys.publicKey)
            try socket.set(.curveSecretKey, keys.secretKey)
        }
        try socket.connect(configuration.backend)
        return socket
    }

    /// Threads plus prefetch, within the broker's limit on READY capacity.
    private func announcedCapacity(averageNanoseconds: UInt64?) -> Int {
        let prefetch = configuration.prefetch.count(threads: configuration.threads, averageNanoseconds: averageNanoseconds)
        return min(configuration.threads + prefetch, Limits.maxCapacity)
    }

    private func ready(capacity: Int, on socket: Socket, update: Bool = false) throws {
        let info = ReadyInfo(capacity: capacity, tasks: registry.names, host: host, pid: pid,
                             threads: configuration.threads, process: configuration.processIndex,
                             heartbeatMilliseconds: configuration.heartbeatInterval.milliseconds,
                             update: update ? true : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var message = OutgoingMessage(.ready)
        message.append(Array(try encoder.encode(info)))
        try message.send(on: socket)
    }

    private func ioLoop() throws {
        var socket = try connect()
        var capacity = announcedCapacity(averageNanoseconds: nil)
        try ready(capacity: capacity, on: socket)
        var nextPaceCheck = monotonicNanoseconds() + 10_000_000
        // When the last capacity update went out (0: none yet); updates go at most every 100 ms.
        var lastAnnouncement: UInt64 = 0
        // The handlers' recent average time (ns), and whether the last turn handed out work.
        var recentAverage = UInt64.max
        var dispatched = false
        logger.info("consumer connecting", metadata: [
            "broker": "\(configuration.backend)", "consumer.threads": "\(configuration.threads)",
            "consumer.pid": "\(pid)", "consumer.tasks": "\(registry.names.joined(separator: ","))",
        ])
        let interval = configuration.heartbeatInterval
        let intervalNanos = interval.nanoseconds
        var lastHeard = monotonicNanoseconds()
        var lastSent = lastHeard
        var inFlight = 0
        var nextStuckCheck: UInt64 = 0
        var draining = false
        var drainDeadline: UInt64 = 0

        func makePoller() -> (Poller, Int, Int) {
            var poller = Poller()
            let socketIndex = poller.add(socket)
            let wakeIndex = poller.add(fileDescriptor: wakeup.readDescriptor)
            return (poller, socketIndex, wakeIndex)
        }
        var (poller, socketIndex, wakeIndex) = makePoller()
        var received = Multipart()

        while true {
            if stopRequested.load(ordering: .relaxed) && !draining {
                draining = true
                drainDeadline = monotonicNanoseconds() + configuration.drainTimeout.nanoseconds
                logger.info("consumer draining", metadata: ["tasks.running": "\(inFlight)"])
                try ready(capacity: 0, on: socket)
                for job in pool.takePending() { job.cancel() }
            }
            if draining && (inFlight == 0 || monotonicNanoseconds() > drainDeadline) {
                flushOutbox(on: socket, inFlight: &inFlight)
                try OutgoingMessage(.disconnect).send(on: socket)
                logger.info("consumer stopped", metadata: ["tasks.abandoned": "\(inFlight)"])
                // Tasks still running past the drain timeout cannot be joined; the broker requeues
                // them on DISCONNECT.
                if inFlight > 0 { throw DrainTimedOut(abandoned: inFlight) }
                return
            }
            if dispatched && recentAverage < Self.spinBelowNanoseconds {
                // Tiny tasks were just handed to idle workers: their results come within
                // microseconds. Wait for them here rather than sleep in poll and be woken, which
                // takes a wake-up out of every round trip (at most 50 µs, only while handlers
                // measure under 20 µs).
                let until = monotonicNanoseconds() &+ 50_000
                while resultsWaiting.load(ordering: .relaxed) == 0 && monotonicNanoseconds() < until {}
            }
            dispatched = false
            // While results sit in the outboxes without a wake-up (workers gather a batch), look
            // every millisecond.
            let gathering = resultsWaiting.load(ordering: .relaxed) > 0
            try poller.poll(timeout: .milliseconds(gathering ? 1 : max(10, Int(intervalNanos / 4_000_000))))
            if poller.isReadable(wakeIndex) {
                wakeup.reset()
            }
            if flushOutbox(on: socket, inFlight: &inFlight) { lastSent = monotonicNanoseconds() }
            if poller.isReadable(socketIndex) {
                var handled = 0
                while handled < 256, try socket.receiveMultipart(into: &received, flags: .dontWait) {
                    handled += 1
                    lastHeard = monotonicNanoseconds()
                    let before = inFlight
                    defer { if inFlight > before { dispatched = true } }
                    switch try handle(received, draining: draining, inFlight: &inFlight) {
                    case .carryOn: break
                    case .reconnect:
                        logger.info("broker asked the consumer to reconnect")
                        // The broker has requeued what it had sent here: do not run it twice.
                        for job in pool.takePending() { job.cancel() }
                        socket = try connect()
                        try ready(capacity: draining ? 0 : capacity, on: socket)
                        (poller, socketIndex, wakeIndex) = makePoller()
                        lastSent = monotonicNanoseconds()
                    }
                }
            }
            let now = monotonicNanoseconds()
            if now >= nextStuckCheck {
                nextStuckCheck = now + 100_000_000
                let stuck = slots.lazy.compactMap { slot in slot.running.withLock { $0 } }.first { now > $0.limit }
                if let (id, name, _) = stuck {
                    logger.critical("handler stuck past its hard limit; handing back work and exiting for replacement", metadata: [
                        "task.id": "\(id)", "task.name": "\(name)", "tasks.held": "\(inFlight)",
                    ])
                    for job in pool.takePending() { job.cancel() }
                    flushOutbox(on: socket, inFlight: &inFlight)
                    try OutgoingMessage(.disconnect).send(on: socket)
                    throw StuckHandler(taskID: id, name: name)
                }
            }
            if now >= nextPaceCheck {
                // Every 10 ms once a round of tasks (one per thread) is measured, every 100 ms at
                // most otherwise: a new consumer finds its pace within its first few tasks.
                nextPaceCheck = now + 10_000_000
                let measured = pace.withLock { pace -> Pace? in
                    guard pace.tasks >= UInt64(configuration.threads) || now >= pace.since + 100_000_000 else { return nil }
                    defer { pace = Pace(since: now) }
                    return pace
                }
                if let measured, measured.tasks > 0 { recentAverage = measured.nanoseconds / measured.tasks }
                if !draining, let measured, measured.tasks > 0, case .automatic = configuration.prefetch,
                   now >= lastAnnouncement + 100_000_000 || lastAnnouncement == 0 {
                    let wanted = announcedCapacity(averageNanoseconds: measured.nanoseconds / measured.tasks)
                    if wanted * 4 > capacity * 5 || wanted * 4 < capacity * 3 {
                        logger.debug("new capacity", metadata: ["capacity": "\(wanted)", "previous": "\(capacity)"])
                        capacity = wanted
                        try ready(capacity: capacity, on: socket, update: true)
                        lastSent = now
                        lastAnnouncement = now
                        // Holding more than the new capacity (the pace slowed): hand back the
                        // surplus not started yet, for consumers with free threads to take.
                        let surplus = inFlight - capacity
                        if surplus > 0 {
                            for job in pool.takePending(atMost: surplus) { job.cancel() }
                        }
                    }
                }
            }
            if now &- lastSent >= intervalNanos {
                try OutgoingMessage(.heartbeat).send(on: socket, flags: .dontWait)
                lastSent = now
            }
            if now &- lastHeard > intervalNanos * UInt64(configuration.liveness) {
                logger.warning("broker silent; reconnecting", metadata: ["broker": "\(configuration.backend)"])
                socket = try connect()
                try ready(capacity: draining ? 0 : capacity, on: socket)
                (poller, socketIndex, wakeIndex) = makePoller()
                lastHeard = now
                lastSent = now
            }
        }
    }

    private enum Next { case carryOn, reconnect }

    private func handle(_ frames: Multipart, draining: Bool, inFlight: inout Int) throws -> Next {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: false)
        } catch .unsupportedVersion(let tag) {
            // A broker of another protocol version will never dispatch here: stop, and say why.
            throw ProtocolMismatch(brokerProtocol: tag)
        } catch {
            logger.warning("bad message from broker dropped", metadata: ["error": "\(error)"])
            return .carryOn
        }
        switch envelope.command {
        case .dispatch:
            var jobs: [ThreadPool.Job] = []
            for group in envelope.groups {
                guard let job = makeJob(group) else { continue }
                jobs.append(job)
            }
            inFlight += jobs.count
            if draining {
                jobs.forEach { $0.cancel() }
            } else {
                pool.enqueue(jobs)
            }
        case .heartbeat:
            break
        case .disconnect:
            return .reconnect
        case .error:
            logger.error("broker reported a protocol error", metadata: ["error": "\(envelope[0].string)"])
        default:
            logger.warning("unexpected command from broker", metadata: ["command": "\(envelope.command)"])
        }
        return .carryOn
    }

    private func makeJob(_ group: ArraySlice<Frame>) -> ThreadPool.Job? {
        let base = group.startIndex
        let id = group[base].string
        let name = group[base + 1].string
        let args = group[base + 2].bytes
        let meta: DispatchMeta
        do {
            meta = try group[base + 3].withUnsafeBytes { buffer throws(ProtocolError) in try DispatchMeta(frame: buffer) }
        } catch {
            logger.warning("bad dispatch dropped", metadata: ["task.id": "\(id)", "error": "\(error)"])
            return nil
        }
        let received = ContinuousClock.now
        let deadline = monotonicNanoseconds() + UInt64(meta.timeoutMilliseconds) * 1_000_000
        let grace = configuration.hardLimitGrace.nanoseconds
        return ThreadPool.Job(
            run: { [self] worker in
                // The hard limit counts from the task's deadline, or from its start if it started later.
                let slot = slots[worker.threadIndex]
                if monotonicNanoseconds() > deadline {
                    // Its time ran out while it waited here (prefetched behind slower tasks): the
                    // broker has given up on it; running it now would be wasted, or worse.
                    let body = JSONText.errorBody(.timeout, "timed out after \(meta.timeoutMilliseconds) ms before it started")
                    post(Completed(id: id, status: "error", body: Array(body.utf8), info: Array("{}".utf8), elapsedNanoseconds: nil))
                    return
                }
                slot.running.withLock { $0 = (id, name, max(monotonicNanoseconds(), deadline) + grace) }
                let started = ContinuousClock.now
                logger.debug("task started", metadata: ["task.id": "\(id)", "task.name": "\(name)", "thread": "\(worker.threadIndex)"])
                let context = TaskContext(
                    taskID: id, name: name, attempt: Int(meta.attempt), threadIndex: worker.threadIndex,
                    deadline: received.advanced(by: .milliseconds(Int(meta.timeoutMilliseconds))))
                let (status, body) = execute(name: name, args: args, context: context)
                let elapsed = started.duration(to: .now)
                let nanoseconds = UInt64(elapsed.components.seconds) &* 1_000_000_000
                    &+ UInt64(elapsed.components.attoseconds / 1_000_000_000)
                let info = resultInfo(thread: worker.threadIndex, attempt: meta.attempt, nanoseconds: nanoseconds)
                logger.debug("task finished", metadata: ["task.id": "\(id)", "task.status": "\(status)"])
                slot.running.withLock { $0 = nil }
                let held = slot.outbox.withLock {
                    $0.append(Completed(id: id, status: status, body: body, info: info, elapsedNanoseconds: nanoseconds))
                    return $0.count
                }
                let waiting = resultsWaiting.add(1, ordering: .relaxed).newValue
                // Wake the I/O thread for the first result waiting (it then looks every
                // millisecond while results keep coming), when this thread is about to run dry (no
                // prefetched task left: it needs credit) or has gathered a batch: one wake-up per
                // batch of results rather than per task.
                if waiting == 1 || held >= Self.resultBatch || pool.pendingCount == 0 { wakeup.signal() }
            },
            cancel: { [self] in
                post(Completed(id: id, status: "requeue", body: [], info: Array("{}".utf8), elapsedNanoseconds: nil))
            })
    }

    /// The info frame of a result (the form ``ResultInfo/json`` writes), built from a prefix made
    /// once: this runs for every task.
    private func resultInfo(thread: Int, attempt: UInt32, nanoseconds: UInt64) -> [UInt8] {
        var info = infoPrefix
        info.reserveCapacity(infoPrefix.count + 64)
        let milliseconds = Double(nanoseconds / 1000) / 1000
        info.append(contentsOf: "\"thread\":\(thread),\"attempts\":\(attempt),\"elapsed_ms\":\(milliseconds)}".utf8)
        return info
    }

    private func post(_ completed: Completed) {
        outbox.withLock { $0.append(completed) }
        wakeup.signal()
    }

    /// Runs the handler for one task and says how it went: `ok`, `error` (final), or `retry` (the
    /// handler threw; the broker retries while attempts remain).
    private func execute(name: String, args: [UInt8], context: TaskContext) -> (String, [UInt8]) {
        guard let handler = registry.handler(named: name) else {
            let served = registry.names.joined(separator: ", ")
            return ("error", Array(JSONText.errorBody(.unknownTask, "unknown task '\(name)': this consumer serves \(served)").utf8))
        }
        do {
            try JSONValidator.validate(args)
        } catch {
            return ("error", Array(JSONText.errorBody(.malformedJSON, "args for '\(name)' are not valid JSON: \(error)").utf8))
        }
        do {
            let output = try handler(RawJSON(bytes: args), context)
            do {
                // Bytes handed back untouched (an echo) were validated above.
                if !output.bytes.sharesStorage(with: args) { try JSONValidator.validate(output.bytes) }
            } catch {
                return ("error", Array(JSONText.errorBody(.handlerError, "handler for '\(name)' returned invalid JSON: \(error)").utf8))
            }
            guard output.bytes.count <= configuration.maxMessageSize else {
                return ("error", Array(JSONText.errorBody(
                    .handlerError, "result of '\(name)' is \(output.bytes.count) bytes; the limit is \(configuration.maxMessageSize)").utf8))
            }
            return ("ok", output.bytes)
        } catch let error as TaskInputError {
            return ("error", Array(JSONText.errorBody(error.kind, error.message).utf8))
        } catch {
            return ("retry", Array(JSONText.errorBody(.handlerError, "\(error)").utf8))
        }
    }

    /// Sends what the workers finished, many results per DONE message.
    @discardableResult
    private func flushOutbox(on socket: Socket, inFlight: inout Int) -> Bool {
        var completed = outbox.withLock { outbox -> [Completed] in
            defer { outbox.removeAll(keepingCapacity: true) }
            return outbox
        }
        var fromWorkers = 0
        for slot in slots {
            slot.outbox.withLock { outbox in
                fromWorkers += outbox.count
                completed.append(contentsOf: outbox)
                outbox.removeAll(keepingCapacity: true)
            }
        }
        if fromWorkers > 0 { resultsWaiting.subtract(fromWorkers, ordering: .relaxed) }
        guard !completed.isEmpty else { return false }
        inFlight -= completed.count
        let ran = completed.lazy.compactMap(\.elapsedNanoseconds)
        if !ran.isEmpty {
            let total = ran.reduce(0, &+)
            let count = UInt64(ran.count)
            pace.withLock { pace in
                pace.tasks += count
                pace.nanoseconds &+= total
            }
        }
        var message = OutgoingMessage(.done)
        func send() {
            do {
                try message.send(on: socket)
            } catch {
                logger.error("could not send results", metadata: ["error": "\(error)"])
            }
            message = OutgoingMessage(.done)
        }
        for item in completed {
            message.append(item.id)
            message.append(item.status)
            message.append(item.body)
            message.append(item.info)
            if message.fieldCount >= 4 * 256 || message.isFull { send() }
        }
        if !message.bodyIsEmpty { send() }
        return true
    }
}

extension Array where Element == UInt8 {
    /// Whether `self` and `other` are the same buffer (not merely equal bytes).
    func sharesStorage(with other: [UInt8]) -> Bool {
        count == other.count && withUnsafeBufferPointer { mine in
            other.withUnsafeBufferPointer { $0.baseAddress == mine.baseAddress }
        }
    }
}

func hostName() -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "unknown" }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}
