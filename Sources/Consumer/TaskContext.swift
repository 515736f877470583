public import ConveyorProtocol
import ConveyorSystem
public import Logging

/// What a handler knows about the task it runs, and what it may do with it: the one value every
/// handler gets (later features add to it, not to the handler's signature: cancellation,
/// progress, lease renewal).
public struct TaskContext: Sendable {
    public let taskID: String
    public let name: String
    /// 1 for the first attempt.
    public let attempt: Int
    /// Index of the worker thread running the handler; for an `async` handler, the thread that
    /// started it (it then runs on Swift's cooperative threads).
    public let threadIndex: Int
    /// When the task's time runs out; a long handler should check ``isPastDeadline``.
    public let deadline: ContinuousClock.Instant
    /// The W3C `traceparent` the task was submitted with (``TaskOptions/traceparent``: the
    /// producer's, or its app's current trace), `nil` if none. A handler that calls other
    /// services passes it on; its trace id is in ``traceID`` and on every line of ``logger``.
    /// (Handlers also run inside the `ServiceContext` that the app's bootstrapped instrument
    /// extracts from it: see docs/OBSERVABILITY.md, "Trace context".)
    public let traceparent: String?
    /// The W3C `tracestate` that came with ``traceparent``, `nil` if none.
    public let tracestate: String?
    /// The trace id of ``traceparent`` (its 32 hex digits), `nil` without one: what log lines
    /// carry as `trace.id`.
    public var traceID: String? { traceparent.map { String(TraceContextFormat.traceID(ofTraceparent: $0)) } }
    /// The consumer's logger with the task's metadata (`task.id`, `task.name`, `task.attempt`, and
    /// `trace.id` and `traceparent` when the task has a trace context): what a handler logs is tied
    /// to its task. Made when asked for (most tasks log nothing, and metadata costs an allocation).
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "task.id"] = "\(taskID)"
        logger[metadataKey: "task.name"] = "\(name)"
        logger[metadataKey: "task.attempt"] = "\(attempt)"
        if let traceparent {
            logger[metadataKey: "trace.id"] = "\(TraceContextFormat.traceID(ofTraceparent: traceparent))"
            logger[metadataKey: "traceparent"] = "\(traceparent)"
        }
        return logger
    }
    private let baseLogger: Logger

    init(taskID: String, name: String, attempt: Int, threadIndex: Int, deadline: ContinuousClock.Instant,
         traceparent: String? = nil, tracestate: String? = nil, logger: Logger = Logger(label: "conveyor.task")) {
        self.taskID = taskID
        self.name = name
        self.attempt = attempt
        self.threadIndex = threadIndex
        self.deadline = deadline
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.baseLogger = logger
    }

    /// `metadata` with the task's `trace.id` added when it has one: for the consumer's own lines
    /// about the task (`task started`, `task succeeded`, `task failed`).
    func withTraceID(_ metadata: Logger.Metadata) -> Logger.Metadata {
        guard let traceparent else { return metadata }
        var metadata = metadata
        metadata["trace.id"] = "\(TraceContextFormat.traceID(ofTraceparent: traceparent))"
        return metadata
    }

    /// Whether the task's time limit has passed: the cooperative cancellation flag. Threads
    /// cannot be killed safely, so long handlers check this and stop early.
    public var isPastDeadline: Bool { ContinuousClock.now >= deadline }
}
