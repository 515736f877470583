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
    /// The consumer's logger with the task's metadata (`task.id`, `task.name`, `task.attempt`):
    /// what a handler logs is tied to its task. Made when asked for (most tasks log nothing, and
    /// metadata costs an allocation).
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "task.id"] = "\(taskID)"
        logger[metadataKey: "task.name"] = "\(name)"
        logger[metadataKey: "task.attempt"] = "\(attempt)"
        return logger
    }
    private let baseLogger: Logger

    init(taskID: String, name: String, attempt: Int, threadIndex: Int, deadline: ContinuousClock.Instant,
         logger: Logger = Logger(label: "conveyor.task")) {
        self.taskID = taskID
        self.name = name
        self.attempt = attempt
        self.threadIndex = threadIndex
        self.deadline = deadline
        self.baseLogger = logger
    }

    /// Whether the task's time limit has passed: the cooperative cancellation flag. Threads
    /// cannot be killed safely, so long handlers check this and stop early.
    public var isPastDeadline: Bool { ContinuousClock.now >= deadline }
}
