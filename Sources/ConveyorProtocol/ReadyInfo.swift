/// The announcement a consumer sends in `READY`.
public struct ReadyInfo: Sendable, Codable, Equatable {
    /// Tasks the broker may hand this consumer at once: its threads plus its prefetch.
    public var capacity: Int
    /// Task names the consumer serves.
    public var tasks: [String]
    public var host: String
    public var pid: Int
    public var threads: Int
    public var process: Int?
    /// Milliseconds between heartbeats that the consumer will send and expects.
    public var heartbeatMilliseconds: Int?
    /// `true` when this only changes the capacity of a consumer the broker knows: a broker that
    /// does not know the sender answers `DISCONNECT` instead of registering it.
    public var update: Bool?
    /// Optional features of this consumer (``Capability``), e.g. `revoke`; absent from older ones.
    public var capabilities: [String]?

    enum CodingKeys: String, CodingKey {
        case capacity, tasks, host, pid, threads, process
        case heartbeatMilliseconds = "heartbeat_ms"
        case update, capabilities
    }

    public init(capacity: Int, tasks: [String], host: String, pid: Int, threads: Int, process: Int? = nil,
                heartbeatMilliseconds: Int? = nil, update: Bool? = nil, capabilities: [String]? = nil) {
        self.update = update
        self.capabilities = capabilities
        self.capacity = capacity
        self.tasks = tasks
        self.host = host
        self.pid = pid
        self.threads = threads
        self.process = process
        self.heartbeatMilliseconds = heartbeatMilliseconds
    }
}
