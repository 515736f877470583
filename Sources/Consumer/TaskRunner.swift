import ConveyorProtocol
import ConveyorSystem
import Logging
import ZeroMQ

/// The worker-thread side of a consumer: turns a DISPATCH group into a ``ThreadPool`` job that
/// runs the handler and leaves its result (or its hand-back) in the outboxes. Never touches the
/// socket.
struct TaskRunner: Sendable {
    let configuration: ConsumerConfiguration
    let registry: TaskRegistry
    let logger: Logger
    let outboxes: ResultOutboxes
    let pool: ThreadPool
    /// What every result's info carries: host, pid and process index.
    let infoTemplate: ResultInfo

    /// A job for the task in `group` (id, name, args, meta), whose meta field is read in `version`.
    /// A meta field this consumer cannot read is answered at once with an `error` result of kind
    /// `unsupported` (docs/PROTOCOL.md §6.2), rather than dropped: a dropped task would hold the
    /// consumer's credit until its timeout.
    func makeJob(_ group: ArraySlice<Frame>, version: ProtocolVersion) -> ThreadPool.Job {
        let base = group.startIndex
        let id = group[base].string
        let name = group[base + 1].string
        let args = group[base + 2].bytes
        let meta: DispatchMeta
        do {
            meta = try group[base + 3].withUnsafeBytes { buffer throws(ProtocolError) in
                try DispatchMeta(field: buffer, version: version)
            }
        } catch {
            logger.warning("unreadable dispatch answered with an error", metadata: ["task.id": "\(id)", "error": "\(error)"])
            let body = Array(JSONText.errorBody(.unsupported, error.description).utf8)
            let unreadable = Completed(id: id, status: .error, body: body, info: Completed.noInfo, elapsedNanoseconds: nil)
            return ThreadPool.Job(run: { [outboxes] _ in outboxes.post(unreadable) },
                                  cancel: { [outboxes] in outboxes.post(unreadable) })
        }
        let received = ContinuousClock.now
        let deadline = monotonicNanoseconds() + UInt64(meta.timeoutMilliseconds) * 1_000_000
        let grace = configuration.hardLimitGrace.nanoseconds
        return ThreadPool.Job(
            run: { [self] worker in
                let slot = outboxes.slots[worker.threadIndex]
                if monotonicNanoseconds() > deadline {
                    // Its time ran out while it waited here (prefetched behind slower tasks): the
                    // broker has given up on it; running it now would be wasted, or worse.
                    let body = JSONText.errorBody(.timeout, "timed out after \(meta.timeoutMilliseconds) ms before it started")
                    outboxes.post(Completed(id: id, status: .error, body: Array(body.utf8), info: Completed.noInfo, elapsedNanoseconds: nil))
                    return
                }
                let context = TaskContext(
                    taskID: id, name: name, attempt: Int(meta.attempt), threadIndex: worker.threadIndex,
                    deadline: received.advanced(by: .milliseconds(Int(meta.timeoutMilliseconds))),
                    traceparent: meta.traceparent, tracestate: meta.tracestate, logger: logger)
                configuration.executionLog?.record(id: id, name: name, attempt: meta.attempt, pid: infoTemplate.pid.map(Int32.init) ?? 0,
                                                   thread: worker.threadIndex)
                logger.debug("task started", metadata: context.withTraceID(["task.id": "\(id)", "task.name": "\(name)", "thread": "\(worker.threadIndex)"]))
                let handler = registry.handler(named: name)
                if handler == nil, let asyncHandler = registry.asyncHandler(named: name) {
                    // An async handler runs as a Swift task: this thread is free for the next job.
                    runAsync(asyncHandler, id: id, args: args, context: context, attempt: meta.attempt)
                    return
                }
                // The hard limit counts from the task's deadline, or from its start if it started later.
                slot.running.withLock { $0 = WorkerSlot.Running(id: id, name: name, limit: max(monotonicNanoseconds(), deadline) + grace) }
                configuration.monitor?.handlerStarted()
                let started = monotonicNanoseconds()
                let (status, body) = context.withServiceContext { execute(handler, name: name, args: args, context: context) }
                let nanoseconds = monotonicNanoseconds() &- started
                if let monitor = configuration.monitor {
                    monitor.handlerEnded()
                    monitor.handled(name, nanoseconds: nanoseconds)
                }
                let info = resultInfo(thread: worker.threadIndex, attempt: meta.attempt, nanoseconds: nanoseconds)
                logOutcome(status, body: body, nanoseconds: nanoseconds, context: context)
                slot.running.withLock { $0 = nil }
                outboxes.workerFinished(
                    Completed(id: id, status: status, body: body, info: info, elapsedNanoseconds: nanoseconds),
                    thread: worker.threadIndex, poolIdle: { pool.pendingCount == 0 })
            },
            cancel: { [outboxes] in
                outboxes.post(Completed(id: id, status: .requeue, body: [], info: Completed.noInfo, elapsedNanoseconds: nil))
            },
            taskID: id)
    }

    /// The info frame of a result, through ``ResultInfo/appendJSON(to:)``.
    private func resultInfo(thread: Int, attempt: UInt32, nanoseconds: UInt64) -> [UInt8] {
        var info = infoTemplate
        info.thread = thread
        info.attempts = Int(attempt)
        // Microseconds, as the writer rounds them.
        info.elapsedMilliseconds = Double(nanoseconds / 1000) / 1000
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96)
        info.appendJSON(to: &bytes)
        return bytes
    }

    /// Runs the handler for one task and says how it went: ``DoneStatus/ok``,
    /// ``DoneStatus/error`` (final), or ``DoneStatus/retry`` (the handler threw; the broker
    /// retries while attempts remain).
    private func execute(_ handler: TaskRegistry.Handler?, name: String, args: [UInt8], context: TaskContext) -> (DoneStatus, [UInt8]) {
        guard let handler else { return Self.unknown(name, registry) }
        if let invalid = validArgs(args, name: name) { return invalid }
        do {
            return check(try handler(RawJSON(bytes: args), context), args: args, name: name)
        } catch {
            return Self.failed(error)
        }
    }

    /// An async handler, run as a Swift task; its result goes to the outboxes when it returns.
    private func runAsync(_ handler: @escaping TaskRegistry.AsyncHandler, id: String, args: [UInt8], context: TaskContext,
                          attempt: UInt32) {
        Task { [self] in
            let started = monotonicNanoseconds()
            let (status, body): (DoneStatus, [UInt8])
            if let invalid = validArgs(args, name: context.name) {
                (status, body) = invalid
            } else {
                do {
                    let output = try await context.withServiceContext { try await handler(RawJSON(bytes: args), context) }
                    (status, body) = check(output, args: args, name: context.name)
                } catch {
                    (status, body) = Self.failed(error)
                }
            }
            let nanoseconds = monotonicNanoseconds() &- started
            configuration.monitor?.handled(context.name, nanoseconds: nanoseconds)
            logOutcome(status, body: body, nanoseconds: nanoseconds, context: context)
            let info = resultInfo(thread: context.threadIndex, attempt: attempt, nanoseconds: nanoseconds)
            outboxes.post(Completed(id: id, status: status, body: body, info: info, elapsedNanoseconds: nanoseconds))
        }
    }

    /// One line per task: a failure at info with its error, a success at debug with its time.
    private func logOutcome(_ status: DoneStatus, body: [UInt8], nanoseconds: UInt64, context: TaskContext) {
        if status == .ok {
            logger.debug("task succeeded", metadata: context.withTraceID([
                "task.id": "\(context.taskID)", "task.name": "\(context.name)", "task.attempt": "\(context.attempt)",
                "elapsed_ms": "\(Double(nanoseconds / 1000) / 1000)",
            ]))
        } else {
            logger.info("task failed", metadata: context.withTraceID([
                "task.id": "\(context.taskID)", "task.name": "\(context.name)", "task.attempt": "\(context.attempt)",
                "task.status": "\(status.rawValue)", "error": "\(String(decoding: body.prefix(500), as: UTF8.self))",
                "elapsed_ms": "\(Double(nanoseconds / 1000) / 1000)",
            ]))
        }
    }

    private static func failure(_ kind: ErrorKind, _ message: String) -> (DoneStatus, [UInt8]) {
        (.error, Array(JSONText.errorBody(kind, message).utf8))
    }

    private static func unknown(_ name: String, _ registry: TaskRegistry) -> (DoneStatus, [UInt8]) {
        failure(.unknownTask, "unknown task '\(name)': this consumer serves \(registry.names.joined(separator: ", "))")
    }

    /// What a handler's throw means: bad input is final, anything else may be retried.
    private static func failed(_ error: any Error) -> (DoneStatus, [UInt8]) {
        if let input = error as? TaskInputError { return failure(input.kind, input.message) }
        return (.retry, Array(JSONText.errorBody(.handlerError, "\(error)").utf8))
    }

    private func validArgs(_ args: [UInt8], name: String) -> (DoneStatus, [UInt8])? {
        do {
            try JSONValidator.validate(args)
            return nil
        } catch {
            return Self.failure(.malformedJSON, "args for '\(name)' are not valid JSON: \(error)")
        }
    }

    /// A handler's output, checked: valid JSON, within the size limit.
    private func check(_ output: RawJSON, args: [UInt8], name: String) -> (DoneStatus, [UInt8]) {
        do {
            // Bytes handed back untouched (an echo) were validated above.
            if !output.bytes.sharesStorage(with: args) { try JSONValidator.validate(output.bytes) }
        } catch {
            return Self.failure(.handlerError, "handler for '\(name)' returned invalid JSON: \(error)")
        }
        guard output.bytes.count <= configuration.maxMessageSize else {
            return Self.failure(.handlerError, "result of '\(name)' is \(output.bytes.count) bytes; the limit is \(configuration.maxMessageSize)")
        }
        return (.ok, output.bytes)
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
