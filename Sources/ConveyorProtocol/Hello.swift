/// The body of `HELLO` (version 3, docs/PROTOCOL.md §5.5): one JSON object in which a peer states
/// the protocol versions it speaks, its role and its capabilities. A producer or consumer may send
/// it (it is optional); the broker answers every `HELLO` with its own, adding its limits.
///
/// Receivers ignore keys they do not know, and `capabilities`, `software`, `heartbeat_ms` and
/// `limits` may be absent. `versions` and `role` are required.
public struct Hello: Sendable, Codable, Equatable {
    /// Protocol version numbers the sender speaks, e.g. `[2, 3]`. Not empty.
    public var versions: [Int]
    public var role: PeerRole
    /// Optional features the sender supports (a broker) or would like to use (a client). A peer
    /// uses a feature that needs the other side's support only when the other side listed it.
    public var capabilities: [Capability]
    /// Name and version of the implementation, for logs and statistics (`conveyor-swift 0.9`).
    public var software: String?
    /// The sender's heartbeat interval in milliseconds (§10), when it has one.
    public var heartbeatMilliseconds: Int?
    /// What the broker accepts; brokers only.
    public var limits: HelloLimits?

    enum CodingKeys: String, CodingKey {
        case versions, role, capabilities, software, limits
        case heartbeatMilliseconds = "heartbeat_ms"
    }

    public init(versions: [Int] = ProtocolVersion.supported.map { Int($0.rawValue) }.sorted(), role: PeerRole,
                capabilities: [Capability] = [], software: String? = nil, heartbeatMilliseconds: Int? = nil,
                limits: HelloLimits? = nil) {
        self.versions = versions
        self.role = role
        self.capabilities = capabilities
        self.software = software
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.limits = limits
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        versions = try c.decode([Int].self, forKey: .versions)
        guard !versions.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .versions, in: c, debugDescription: "versions must not be empty")
        }
        role = try c.decode(PeerRole.self, forKey: .role)
        capabilities = try c.decodeIfPresent([Capability].self, forKey: .capabilities) ?? []
        software = try c.decodeIfPresent(String.self, forKey: .software)
        heartbeatMilliseconds = try c.decodeIfPresent(Int.self, forKey: .heartbeatMilliseconds)
        limits = try c.decodeIfPresent(HelloLimits.self, forKey: .limits)
    }

    /// The newest version both sides speak, or `nil` when they share none.
    public func commonVersion(with other: Hello) -> ProtocolVersion? {
        let shared = Set(versions).intersection(other.versions)
        return ProtocolVersion.supported.first { shared.contains(Int($0.rawValue)) }
    }

    /// The JSON text, keys sorted and no spaces (the same bytes every time, for golden tests and
    /// for peers that compare), written without Foundation.
    public var json: String {
        var parts: [String] = []
        parts.append("\"capabilities\":[" + capabilities.map { JSONText.quoted($0.rawValue) }.joined(separator: ",") + "]")
        if let heartbeatMilliseconds { parts.append("\"heartbeat_ms\":\(heartbeatMilliseconds)") }
        if let limits { parts.append("\"limits\":" + limits.json) }
        parts.append("\"role\":" + JSONText.quoted(role.rawValue))
        if let software { parts.append("\"software\":" + JSONText.quoted(software)) }
        parts.append("\"versions\":[" + versions.map(String.init).joined(separator: ",") + "]")
        return "{" + parts.joined(separator: ",") + "}"
    }
}

/// What a broker accepts, as it states it in its `HELLO`. Every field is optional.
public struct HelloLimits: Sendable, Codable, Equatable {
    /// The largest args of one task, bytes (`--max-message-size`).
    public var maxMessageSize: Int64?
    /// Groups in one packed frame, at most (65,536).
    public var maxGroups: Int?
    /// Tasks the broker queues before it rejects (`--max-queued`).
    public var maxQueued: Int?

    enum CodingKeys: String, CodingKey {
        case maxMessageSize = "max_message_size"
        case maxGroups = "max_groups"
        case maxQueued = "max_queued"
    }

    public init(maxMessageSize: Int64? = nil, maxGroups: Int? = nil, maxQueued: Int? = nil) {
        self.maxMessageSize = maxMessageSize
        self.maxGroups = maxGroups
        self.maxQueued = maxQueued
    }

    var json: String {
        var parts: [String] = []
        if let maxGroups { parts.append("\"max_groups\":\(maxGroups)") }
        if let maxMessageSize { parts.append("\"max_message_size\":\(maxMessageSize)") }
        if let maxQueued { parts.append("\"max_queued\":\(maxQueued)") }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

/// Who a peer says it is. An open set: a receiver accepts a role it does not know (the socket, not
/// the role, decides what a peer may send).
public struct PeerRole: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }

    public static let producer = PeerRole(rawValue: "producer")
    public static let consumer = PeerRole(rawValue: "consumer")
    public static let broker = PeerRole(rawValue: "broker")
    /// An operator's tool (`conveyor stats`, `conveyor dead-letters`).
    public static let `operator` = PeerRole(rawValue: "operator")
}

/// An optional feature, named in `HELLO`. An open set: receivers ignore names they do not know.
/// Version 3.0 defines none that a broker must have; the names below are reserved for the features
/// the next versions add, each usable only between peers that both list it.
public struct Capability: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }

    /// A consumer that gives back a prefetched task it has not started when the broker sends
    /// REVOKE (announced in READY's `capabilities`): `cancel` then works on reserved tasks.
    public static let revoke = Capability(rawValue: "revoke")
    /// The broker takes the `not_before` option (§8.12): delayed tasks, `scheduled` in `STATUS`.
    public static let notBefore = Capability(rawValue: "not_before")
    /// The broker takes the `unique_key` and `unique_ttl_ms` options (§8.12), and answers a
    /// submit whose key is held with `ACCEPTED` `ID HELD`.
    public static let uniqueKey = Capability(rawValue: "unique_key")
    /// Reserved: the `workflow_parent` option (groups, chords).
    public static let workflows = Capability(rawValue: "workflows")
    /// Reserved: the `cancel_on_disconnect` option.
    public static let cancelOnDisconnect = Capability(rawValue: "cancel_on_disconnect")
    /// Reserved: trace context in options and dispatch meta.
    public static let traceContext = Capability(rawValue: "trace_context")
    /// Reserved: cancelling a running task.
    public static let cancelRunning = Capability(rawValue: "cancel_running")
    /// Reserved: progress reports from consumers.
    public static let progress = Capability(rawValue: "progress")
    /// The broker takes `RENEW` (§5.3.1) and leases dispatched tasks (§8.3.1).
    public static let leases = Capability(rawValue: "leases")
    /// The broker takes `PURGE` (§4.8.1): cancelling every waiting task of a name.
    public static let purge = Capability(rawValue: "purge")
    /// The broker takes `TASKS` (§4.8.3): listing its tasks by state, a page at a time.
    public static let tasks = Capability(rawValue: "tasks")
    /// The broker takes `PAUSE` (§4.8.4): pausing and resuming the dispatch of a task name.
    public static let pause = Capability(rawValue: "pause")
    /// The broker takes `SCHEDULE` (§4.8.6): periodic schedules kept and fired by the broker.
    public static let schedules = Capability(rawValue: "schedules")
    /// The broker takes `LIMIT` (§4.8.5): global rate, concurrency and weight per task name.
    public static let limits = Capability(rawValue: "limits")
    /// Reserved: warnings attached to replies.
    public static let warnings = Capability(rawValue: "warnings")
}
