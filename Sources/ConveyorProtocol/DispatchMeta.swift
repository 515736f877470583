/// The meta field of each `DISPATCH` group (docs/PROTOCOL.md §6.2): the attempt (1 for the first
/// try), what is left of the task's time, and the task's trace context if it has one.
///
/// Version 3 writes tagged fields (``TaggedFields``): `attempt` (0x0001) and `timeout_ms` (0x0002),
/// both always present, then `traceparent` (0x0009) and `tracestate` (0x000A) when the task has
/// them; later versions add fields (a lease) the same way. Version 2 used 8 bytes: `attempt` u32
/// then `timeout_ms` u32, big-endian (no trace context).
public struct DispatchMeta: Sendable, Equatable {
    public var attempt: UInt32
    /// Milliseconds left before the broker declares the task timed out, at least 1.
    public var timeoutMilliseconds: UInt32
    /// The task's W3C `traceparent` (``TaskOptions/traceparent``), as the producer gave it.
    public var traceparent: String?
    /// The task's W3C `tracestate`; only with a ``traceparent``.
    public var tracestate: String?

    /// The size of a version-2 meta field.
    public static let version2Size = 8
    /// The size of a version-3 meta field without a trace context: `attempt` and `timeout_ms`.
    public static let version3Size = 16

    public init(attempt: UInt32, timeoutMilliseconds: UInt32, traceparent: String? = nil, tracestate: String? = nil) {
        self.attempt = attempt
        self.timeoutMilliseconds = timeoutMilliseconds
        self.traceparent = traceparent
        self.tracestate = tracestate
    }

    // MARK: Encoding

    public func encoded(for version: ProtocolVersion) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.version3Size)
        append(to: &bytes, version: version)
        return bytes
    }

    public func encodedCount(for version: ProtocolVersion) -> Int {
        guard version == .v3 else { return Self.version2Size }
        var count = Self.version3Size
        if let traceparent { count += TaggedFields.headerSize + traceparent.utf8.count }
        if let tracestate { count += TaggedFields.headerSize + tracestate.utf8.count }
        return count
    }

    public func append(to bytes: inout [UInt8], version: ProtocolVersion) {
        switch version {
        case .v2:
            bytes.appendBigEndian(attempt)
            bytes.appendBigEndian(timeoutMilliseconds)
        case .v3:
            TaggedFields.appendU32(MetaTag.attempt, attempt, to: &bytes)
            TaggedFields.appendU32(MetaTag.timeout, timeoutMilliseconds, to: &bytes)
            if let traceparent { TaggedFields.appendText(MetaTag.traceParent, traceparent, to: &bytes) }
            if let tracestate { TaggedFields.appendText(MetaTag.traceState, tracestate, to: &bytes) }
        }
    }

    // MARK: Decoding

    /// Decodes a meta field received in a `DISPATCH` of `version`. Total, like
    /// ``TaskOptions/init(field:version:)``: `.malformed` for bytes that do not parse or a missing
    /// `attempt` or `timeout_ms`, `.unsupportedField` for a critical field this build does not know.
    /// A consumer answers such a task with `DONE` `error` (kind `unsupported`) instead of running it.
    /// A trace context field that is not valid is dropped, as in ``TaskOptions/init(field:version:)``.
    public init(field bytes: UnsafeRawBufferPointer, version: ProtocolVersion) throws(ProtocolError) {
        switch version {
        case .v2:
            guard bytes.count == Self.version2Size else {
                throw .malformed("dispatch meta frame has \(bytes.count) bytes; expected \(Self.version2Size)")
            }
            self.init(attempt: bytes.loadBigEndianUInt32(at: 0), timeoutMilliseconds: bytes.loadBigEndianUInt32(at: 4))
        case .v3:
            let what = "dispatch meta field"
            var attempt: UInt32?
            var timeout: UInt32?
            var traceparent: String?
            var tracestate: String?
            try TaggedFields.forEach(in: bytes, what: what) { (tag, value) throws(ProtocolError) in
                switch tag & ~TaggedFields.criticalBit {
                case MetaTag.attempt: attempt = try TaggedFields.u32(value, "attempt", tag, in: what)
                case MetaTag.timeout: timeout = try TaggedFields.u32(value, "timeout_ms", tag, in: what)
                case MetaTag.traceParent:
                    traceparent = try TraceContextFormat.decode(
                        value, tag: tag, name: "traceparent", in: what, problem: TraceContextFormat.problem(traceparent:))
                case MetaTag.traceState:
                    tracestate = try TraceContextFormat.decode(
                        value, tag: tag, name: "tracestate", in: what, problem: TraceContextFormat.problem(tracestate:))
                default:
                    if tag & TaggedFields.criticalBit != 0 {
                        throw TaggedFields.unsupportedCritical(tag, in: what, reserved: MetaTag.reservedName)
                    }
                }
            }
            guard let attempt else { throw .malformed("\(what): attempt (0x0001) is missing") }
            guard let timeout else { throw .malformed("\(what): timeout_ms (0x0002) is missing") }
            self.init(attempt: attempt, timeoutMilliseconds: timeout, traceparent: traceparent,
                      tracestate: traceparent == nil ? nil : tracestate)
        }
    }
}

/// The numbers of the dispatch meta fields (docs/PROTOCOL.md §6.2).
public enum MetaTag {
    /// u32: 1 for the first try.
    public static let attempt: UInt16 = 0x0001
    /// u32: milliseconds left, at least 1.
    public static let timeout: UInt16 = 0x0002

    /// Reserved: the task's deadline, u64 milliseconds since the Unix epoch (wall clock).
    public static let deadline: UInt16 = 0x0003
    /// The task's W3C `traceparent` (the option 0x0009 as accepted), sent plain when it has one.
    public static let traceParent: UInt16 = 0x0009
    /// The task's W3C `tracestate` (the option 0x000A), sent plain with its `traceparent`.
    public static let traceState: UInt16 = 0x000A
    /// Reserved: a lease the consumer must renew to keep the task (lease renewal command).
    public static let lease: UInt16 = 0x000B

    public static func reservedName(_ number: UInt16) -> String? {
        switch number {
        case deadline: "deadline"
        case traceParent: "traceparent"
        case traceState: "tracestate"
        case lease: "lease"
        default: nil
        }
    }
}
