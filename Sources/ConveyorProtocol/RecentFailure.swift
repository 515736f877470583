/// A task that ended without succeeding (`error`, `timeout`, or a status a newer broker added; not
/// `cancelled`), as the broker's bounded list of recent failures keeps it: every final failure is
/// listable, with `--attempts 1` too (where it makes no dead letter). `DEAD_LETTERS` with the
/// action `failures` lists them (docs/PROTOCOL.md §4.8).
public struct RecentFailure: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var status: String
    /// When it ended: seconds since the Unix epoch.
    public var at: Double
    /// The size of its args; absent for a failure restored from the journal (its args are gone).
    public var argsBytes: Int?
    public var attempts: Int?
    /// The error text of its result, at most 300 characters, and its kind.
    public var error: String
    public var kind: String?

    enum CodingKeys: String, CodingKey {
        case id, name, status, at, attempts, error, kind
        case argsBytes = "args_bytes"
    }

    public init(id: String, name: String, status: String, at: Double, argsBytes: Int?, attempts: Int?,
                error: String, kind: String?) {
        self.id = id
        self.name = name
        self.status = status
        self.at = at
        self.argsBytes = argsBytes
        self.attempts = attempts
        self.error = error
        self.kind = kind
    }
}
