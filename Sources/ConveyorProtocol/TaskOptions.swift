/// Per-task options chosen by the producer, carried in the 16-byte options frame of `SUBMIT`.
///
/// Layout (big-endian): `timeout_ms` u32, `priority` i32, `max_attempts` u32, `retry_backoff_ms` u32.
/// An empty options frame means the defaults.
public struct TaskOptions: Sendable, Equatable, Codable {
    /// How long the task may take from submission to result, queueing included.
    public var timeoutMilliseconds: UInt32
    /// Higher runs first; equal priorities run first-in first-out.
    public var priority: Int32
    /// How many times the task may be tried in all (1 = no retry).
    public var maxAttempts: UInt32
    /// Delay before a retry after a handler failure; doubles with each attempt.
    public var retryBackoffMilliseconds: UInt32

    public static let encodedSize = 16
    public static let `default` = TaskOptions()

    public init(
        timeoutMilliseconds: UInt32 = 300_000,
        priority: Int32 = 0,
        maxAttempts: UInt32 = 1,
        retryBackoffMilliseconds: UInt32 = 1_000
    ) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.priority = priority
        self.maxAttempts = max(1, maxAttempts)
        self.retryBackoffMilliseconds = retryBackoffMilliseconds
    }

    /// The 16 bytes of the options frame.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.encodedSize)
        bytes.appendBigEndian(timeoutMilliseconds)
        bytes.appendBigEndian(UInt32(bitPattern: priority))
        bytes.appendBigEndian(maxAttempts)
        bytes.appendBigEndian(retryBackoffMilliseconds)
        return bytes
    }

    /// Decodes an options frame: empty gives the defaults, 16 bytes the values, anything else fails.
    public init(frame: UnsafeRawBufferPointer) throws(ProtocolError) {
        if frame.isEmpty {
            self = .default
            return
        }
        guard frame.count == Self.encodedSize else {
            throw .malformed("options frame has \(frame.count) bytes; expected 0 or \(Self.encodedSize)")
        }
        self.init(
            timeoutMilliseconds: frame.loadBigEndianUInt32(at: 0),
            priority: Int32(bitPattern: frame.loadBigEndianUInt32(at: 4)),
            maxAttempts: frame.loadBigEndianUInt32(at: 8),
            retryBackoffMilliseconds: frame.loadBigEndianUInt32(at: 12)
        )
        guard timeoutMilliseconds > 0 else { throw .malformed("options frame: timeout_ms must be positive") }
    }
}

/// The 8-byte metadata frame of each `DISPATCH` group: `attempt` u32 (1 for the first try) and
/// `timeout_ms` u32 (what is left of the task's time), both big-endian.
public struct DispatchMeta: Sendable, Equatable {
    public var attempt: UInt32
    public var timeoutMilliseconds: UInt32
    public static let encodedSize = 8

    public init(attempt: UInt32, timeoutMilliseconds: UInt32) {
        self.attempt = attempt
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.encodedSize)
        bytes.appendBigEndian(attempt)
        bytes.appendBigEndian(timeoutMilliseconds)
        return bytes
    }

    public init(frame: UnsafeRawBufferPointer) throws(ProtocolError) {
        guard frame.count == Self.encodedSize else {
            throw .malformed("dispatch meta frame has \(frame.count) bytes; expected \(Self.encodedSize)")
        }
        self.init(attempt: frame.loadBigEndianUInt32(at: 0), timeoutMilliseconds: frame.loadBigEndianUInt32(at: 4))
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
