/// Per-task options chosen by the producer, carried in the options field of each `SUBMIT` group.
///
/// Version 3 writes them as tagged fields (docs/PROTOCOL.md §6.1, ``TaggedFields``): only the
/// options that differ from their defaults, in the order of their numbers, so the default options
/// are an empty field. Version 2 used a fixed 16-byte layout (`timeout_ms` u32, `priority` i32,
/// `max_attempts` u32, `retry_backoff_ms` u32, big-endian), still read and written for `CVY2` peers.
/// Either way an empty field means the defaults.
public struct TaskOptions: Sendable, Equatable, Codable {
    /// How long the task may take from the moment it is ready to run (accepted, or its delay or
    /// group wait over) to its result: queueing, retry delays and running included (§8.5).
    public var timeoutMilliseconds: UInt32
    /// Higher runs first; equal priorities run first-in first-out.
    public var priority: Int32
    /// How many times the task may be tried in all (1 = no retry).
    public var maxAttempts: UInt32
    /// Delay before a retry after a handler failure; doubles with each attempt.
    public var retryBackoffMilliseconds: UInt32
    /// Cancel the task, while it waits, once its producer's connection is gone (its producer sent
    /// DISCONNECT or has been silent for the broker's liveness): for work whose requester is gone
    /// (a web request that ended). Version 3 only; sent critical, so a broker that cannot honour
    /// it refuses the task rather than run it after all.
    public var cancelOnDisconnect: Bool
    /// Refuse the task at once (`REJECTED`, naming the names served now) when no connected
    /// consumer serves its name, instead of queueing it to wait for one. Version 3 only; sent
    /// critical.
    public var requireConsumer: Bool
    /// The W3C Trace Context `traceparent` of the work that submitted the task (a web request's
    /// `traceparent` header), handed to the handler's ``TaskContext`` and logged with the task, so
    /// the request can be followed into the task that served it. Version 3 only; sent plain (a
    /// broker that ignores it only loses the trace). The producer library takes it from
    /// swift-distributed-tracing's current `ServiceContext` when this is `nil`, and refuses a
    /// task whose value is not valid (``problem``): check a header you copy from a request with
    /// ``TraceContextFormat/problem(traceparent:)`` first, and leave out one that is not valid.
    public var traceparent: String?
    /// The W3C Trace Context `tracestate` that goes with ``traceparent`` (vendors' own data), at
    /// most 512 bytes of printable ASCII; carried only with a `traceparent`.
    public var tracestate: String?
    /// Where the result is POSTed when the task ends (Webhook.swift; docs/GATEWAY.md): `http://` or
    /// `https://`, at most 2048 bytes. The broker then creates a delivery task that a gateway
    /// serves. Version 3 only; sent critical, so a broker without webhooks refuses the task.
    public var callbackURL: String?
    /// Run no earlier than this: wall-clock milliseconds since the Unix epoch (UTC), compared with
    /// the broker's clock. Until then the task is `scheduled`; its timeout counts from this time
    /// (or from its acceptance when that is later: a time in the past is ready at once). The
    /// broker refuses a time more than ``maxDelayMilliseconds`` ahead. Version 3 only; sent
    /// critical, so a broker without delayed tasks refuses the task rather than run it early.
    public var notBefore: UInt64?
    /// At most one task of this name with this key at a time (1–255 bytes of visible ASCII): while
    /// one is held and not finished, or finished less than ``uniqueTTLMilliseconds`` ago, a submit
    /// with the same name and key makes no task and is answered with the existing task's id
    /// (docs/PROTOCOL.md §8.12). Version 3 only; sent critical.
    public var uniqueKey: String?
    /// How long a finished task keeps its ``uniqueKey`` (ms; 0, the default: only while it is
    /// not finished). Only with a `uniqueKey`.
    public var uniqueTTLMilliseconds: UInt32

    /// The longest delay the broker takes: `notBefore` at most this far past its clock (366 days).
    public static let maxDelayMilliseconds: UInt64 = 366 * 86_400_000

    /// The size of a version-2 options field that is not empty.
    public static let version2Size = 16
    public static let `default` = TaskOptions()

    public init(
        timeoutMilliseconds: UInt32 = 300_000,
        priority: Int32 = 0,
        maxAttempts: UInt32 = 1,
        retryBackoffMilliseconds: UInt32 = 1_000,
        cancelOnDisconnect: Bool = false,
        requireConsumer: Bool = false,
        traceparent: String? = nil,
        tracestate: String? = nil,
        callbackURL: String? = nil,
        notBefore: UInt64? = nil,
        uniqueKey: String? = nil,
        uniqueTTLMilliseconds: UInt32 = 0
    ) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.priority = priority
        self.maxAttempts = max(1, maxAttempts)
        self.retryBackoffMilliseconds = retryBackoffMilliseconds
        self.cancelOnDisconnect = cancelOnDisconnect
        self.requireConsumer = requireConsumer
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.callbackURL = callbackURL
        self.notBefore = notBefore
        self.uniqueKey = uniqueKey
        self.uniqueTTLMilliseconds = uniqueTTLMilliseconds
    }

    /// Why these options cannot be sent, naming the option (a ``traceparent`` or ``tracestate``
    /// that is not valid, or a `tracestate` without a `traceparent`); `nil` when they can. The
    /// producer library refuses such a task before sending it.
    public var problem: String? {
        if let callbackURL, let reason = Webhook.problem(callbackURL: callbackURL) { return reason }
        if let uniqueKey, !Self.isVisibleASCII(uniqueKey) {
            return "unique_key \(Self.quoted(uniqueKey)) must be 1-255 bytes of visible ASCII (no spaces), as task ids are"
        }
        if uniqueKey == nil, uniqueTTLMilliseconds != 0 {
            return "unique_ttl is given without a unique_key: the TTL is how long a finished task keeps its key; pass both or neither"
        }
        guard traceparent != nil || tracestate != nil else { return nil }
        if let traceparent, let reason = TraceContextFormat.problem(traceparent: traceparent) {
            return "traceparent \(Self.quoted(traceparent)) is not a W3C traceparent: \(reason); pass the incoming request's traceparent header unchanged, or none"
        }
        if let tracestate {
            guard traceparent != nil else {
                return "tracestate is given without a traceparent: W3C tracestate goes only with a traceparent; pass both or neither"
            }
            if let reason = TraceContextFormat.problem(tracestate: tracestate) {
                return "tracestate \(Self.quoted(tracestate)) is not a W3C tracestate: \(reason); pass the incoming request's tracestate header unchanged, or none"
            }
        }
        return nil
    }

    /// 1–255 bytes, each 0x21–0x7E (a task id's rule).
    static func isVisibleASCII(_ text: String) -> Bool {
        let count = text.utf8.count
        return count > 0 && count <= 255 && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    static func isVisibleASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count > 0 && bytes.count <= 255 && bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// `value` in quotes, cut to 80 characters for an error message.
    private static func quoted(_ value: String) -> String {
        value.count <= 80 ? "'\(value)'" : "'\(value.prefix(80))…'"
    }

    /// The options version 2 can carry (all but ``cancelOnDisconnect``, ``requireConsumer``, the
    /// trace context, the callback, ``notBefore`` and ``uniqueKey``).
    private var version2Default: Bool {
        timeoutMilliseconds == Self.default.timeoutMilliseconds && priority == Self.default.priority
            && maxAttempts == Self.default.maxAttempts && retryBackoffMilliseconds == Self.default.retryBackoffMilliseconds
    }

    // MARK: Encoding

    /// The options field in `version`'s encoding. Hot paths append it to an ``OutgoingMessage``
    /// with ``OutgoingMessage/append(_:)-(TaskOptions)`` instead, which writes it in place.
    public func encoded(for version: ProtocolVersion) -> [UInt8] {
        var bytes: [UInt8] = []
        append(to: &bytes, version: version)
        return bytes
    }

    /// The number of bytes ``append(to:version:)`` writes.
    public func encodedCount(for version: ProtocolVersion) -> Int {
        switch version {
        case .v2:
            return version2Default ? 0 : Self.version2Size
        case .v3:
            var count = 0
            if timeoutMilliseconds != Self.default.timeoutMilliseconds { count += 8 }
            if priority != Self.default.priority { count += 8 }
            if maxAttempts != Self.default.maxAttempts { count += 8 }
            if retryBackoffMilliseconds != Self.default.retryBackoffMilliseconds { count += 8 }
            if cancelOnDisconnect { count += 4 }
            if requireConsumer { count += 4 }
            if let traceparent { count += TaggedFields.headerSize + traceparent.utf8.count }
            if let tracestate { count += TaggedFields.headerSize + tracestate.utf8.count }
            if let callbackURL { count += TaggedFields.headerSize + callbackURL.utf8.count }
            if notBefore != nil { count += 12 }
            if let uniqueKey { count += TaggedFields.headerSize + uniqueKey.utf8.count }
            if uniqueTTLMilliseconds != 0 { count += 8 }
            return count
        }
    }

    /// Appends the options field in `version`'s encoding: version 3 writes each option that differs
    /// from its default as a non-critical field, by number; version 2 writes nothing for the
    /// defaults and 16 bytes otherwise.
    public func append(to bytes: inout [UInt8], version: ProtocolVersion) {
        switch version {
        case .v2:
            guard !version2Default else { return }
            bytes.appendBigEndian(timeoutMilliseconds)
            bytes.appendBigEndian(UInt32(bitPattern: priority))
            bytes.appendBigEndian(maxAttempts)
            bytes.appendBigEndian(retryBackoffMilliseconds)
        case .v3:
            let defaults = Self.default
            if timeoutMilliseconds != defaults.timeoutMilliseconds {
                TaggedFields.appendU32(OptionTag.timeout, timeoutMilliseconds, to: &bytes)
            }
            if priority != defaults.priority {
                TaggedFields.appendU32(OptionTag.priority, UInt32(bitPattern: priority), to: &bytes)
            }
            if maxAttempts != defaults.maxAttempts {
                TaggedFields.appendU32(OptionTag.maxAttempts, maxAttempts, to: &bytes)
            }
            if retryBackoffMilliseconds != defaults.retryBackoffMilliseconds {
                TaggedFields.appendU32(OptionTag.retryBackoff, retryBackoffMilliseconds, to: &bytes)
            }
            if let notBefore {
                TaggedFields.append(OptionTag.notBefore | TaggedFields.criticalBit, length: 8, to: &bytes) {
                    $0.appendBigEndian(UInt32(truncatingIfNeeded: notBefore >> 32))
                    $0.appendBigEndian(UInt32(truncatingIfNeeded: notBefore))
                }
            }
            if let uniqueKey { TaggedFields.appendText(OptionTag.uniqueKey | TaggedFields.criticalBit, uniqueKey, to: &bytes) }
            if cancelOnDisconnect {
                TaggedFields.append(OptionTag.cancelOnDisconnect | TaggedFields.criticalBit, length: 0, to: &bytes) { _ in }
            }
            if let traceparent { TaggedFields.appendText(OptionTag.traceParent, traceparent, to: &bytes) }
            if let tracestate { TaggedFields.appendText(OptionTag.traceState, tracestate, to: &bytes) }
            if requireConsumer {
                TaggedFields.append(OptionTag.requireConsumer | TaggedFields.criticalBit, length: 0, to: &bytes) { _ in }
            }
            if let callbackURL {
                TaggedFields.append(OptionTag.callbackURL | TaggedFields.criticalBit, length: callbackURL.utf8.count, to: &bytes) {
                    $0.append(contentsOf: callbackURL.utf8)
                }
            }
            if uniqueTTLMilliseconds != 0 {
                TaggedFields.appendU32(OptionTag.uniqueTTL | TaggedFields.criticalBit, uniqueTTLMilliseconds, to: &bytes)
            }
        }
    }

    // MARK: Decoding

    /// Decodes an options field received in a message of `version` (``Envelope/version``).
    ///
    /// Total: any bytes give either options or an error, never a crash, and the common case
    /// allocates nothing. Errors: `.malformed` for a field that does not parse (wrong length, a
    /// header cut short, a value running past the end, `timeout_ms` 0, a trace context field sent
    /// critical that is not valid), `.unsupportedField` for a critical field of a number this build
    /// does not know. Both are reasons to reject the task: send `error.description` in `REJECTED`.
    /// A plain `traceparent` or `tracestate` that is not valid is dropped (the task goes on without
    /// it, as W3C asks of a receiver), and so is a `tracestate` without a valid `traceparent`.
    public init(field bytes: UnsafeRawBufferPointer, version: ProtocolVersion) throws(ProtocolError) {
        switch version {
        case .v2: try self.init(version2: bytes)
        case .v3: try self.init(tagged: bytes)
        }
    }

    private init(version2 frame: UnsafeRawBufferPointer) throws(ProtocolError) {
        if frame.isEmpty {
            self = .default
            return
        }
        guard frame.count == Self.version2Size else {
            throw .malformed("options frame has \(frame.count) bytes; expected 0 or \(Self.version2Size)")
        }
        self.init(
            timeoutMilliseconds: frame.loadBigEndianUInt32(at: 0),
            priority: Int32(bitPattern: frame.loadBigEndianUInt32(at: 4)),
            maxAttempts: frame.loadBigEndianUInt32(at: 8),
            retryBackoffMilliseconds: frame.loadBigEndianUInt32(at: 12)
        )
        guard timeoutMilliseconds > 0 else { throw .malformed("options frame: timeout_ms must be positive") }
    }

    private static let what = "options field"

    private init(tagged bytes: UnsafeRawBufferPointer) throws(ProtocolError) {
        var options = TaskOptions.default
        try TaggedFields.forEach(in: bytes, what: Self.what) { (tag, value) throws(ProtocolError) in
            switch tag & ~TaggedFields.criticalBit {
            case OptionTag.timeout:
                options.timeoutMilliseconds = try TaggedFields.u32(value, "timeout_ms", tag, in: Self.what)
            case OptionTag.priority:
                options.priority = Int32(bitPattern: try TaggedFields.u32(value, "priority", tag, in: Self.what))
            case OptionTag.maxAttempts:
                options.maxAttempts = max(1, try TaggedFields.u32(value, "max_attempts", tag, in: Self.what))
            case OptionTag.retryBackoff:
                options.retryBackoffMilliseconds = try TaggedFields.u32(value, "retry_backoff_ms", tag, in: Self.what)
            case OptionTag.cancelOnDisconnect:
                guard value.isEmpty else {
                    throw TaggedFields.wrongSize(value.count, 0, "cancel_on_disconnect", tag, in: Self.what)
                }
                options.cancelOnDisconnect = true
            case OptionTag.requireConsumer:
                guard value.isEmpty else {
                    throw TaggedFields.wrongSize(value.count, 0, "require_consumer", tag, in: Self.what)
                }
                options.requireConsumer = true
            case OptionTag.traceParent:
                options.traceparent = try TraceContextFormat.decode(
                    value, tag: tag, name: "traceparent", in: Self.what, problem: TraceContextFormat.problem(traceparent:))
            case OptionTag.traceState:
                options.tracestate = try TraceContextFormat.decode(
                    value, tag: tag, name: "tracestate", in: Self.what, problem: TraceContextFormat.problem(tracestate:))
            case OptionTag.callbackURL:
                let url = String(decoding: value, as: UTF8.self)
                if let reason = Webhook.problem(callbackURL: url) { throw .malformed("\(Self.what): \(reason)") }
                options.callbackURL = url
            case OptionTag.notBefore:
                guard value.count == 8 else { throw TaggedFields.wrongSize(value.count, 8, "not_before", tag, in: Self.what) }
                options.notBefore = UInt64(value.loadBigEndianUInt32(at: 0)) << 32 | UInt64(value.loadBigEndianUInt32(at: 4))
            case OptionTag.uniqueKey:
                guard Self.isVisibleASCII(value) else {
                    throw .malformed("\(Self.what): unique_key (\(TaggedFields.spell(tag))) must be 1-255 bytes of visible ASCII")
                }
                options.uniqueKey = String(decoding: value, as: UTF8.self)
            case OptionTag.uniqueTTL:
                options.uniqueTTLMilliseconds = try TaggedFields.u32(value, "unique_ttl_ms", tag, in: Self.what)
            default:
                if tag & TaggedFields.criticalBit != 0 {
                    throw TaggedFields.unsupportedCritical(tag, in: Self.what, reserved: OptionTag.reservedName)
                }
            }
        }
        guard options.timeoutMilliseconds > 0 else { throw .malformed("options field: timeout_ms must be positive") }
        if options.traceparent == nil { options.tracestate = nil }
        self = options
    }
}

extension [UInt8] {
    @inlinable
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}

extension UnsafeRawBufferPointer {
    @inlinable
    func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
