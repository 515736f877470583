import ConveyorProtocol

/// Everything a consumer process can be told at start.
public struct ConsumerConfiguration: Sendable {
    /// The broker's backend endpoint.
    public var backend = "tcp://127.0.0.1:5556"
    /// Worker threads in the pool.
    public var threads = 4
    /// Tasks the broker may send beyond the free threads (0: a task is only sent to a free thread).
    public var prefetch = 0
    /// Heartbeat interval; the broker is presumed gone after `liveness` silent intervals.
    public var heartbeatInterval: Duration = .seconds(1)
    public var liveness = 4
    /// Index of this process under its supervisor, reported with every result.
    public var processIndex: Int?
    /// Largest inbound message in bytes.
    public var maxMessageSize: Int64 = Limits.defaultMaxMessageSize
    /// How long a drain waits for running tasks before giving up on them.
    public var drainTimeout: Duration = .seconds(60)
    /// The hard limit: a task still held this long past its own timeout means a handler is stuck.
    /// Threads cannot be killed safely, so the consumer then returns what it can, hands back what it
    /// has not started, and exits with ``Consumer/stuckExitCode`` for its supervisor to replace it.
    public var hardLimitGrace: Duration = .seconds(30)

    public init() {}
}
