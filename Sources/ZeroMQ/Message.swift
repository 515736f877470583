import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One frame of a ZeroMQ message, held in a libzmq `zmq_msg_t`.
///
/// A received message keeps the bytes libzmq received until the caller asks for them
/// (``withUnsafeBytes(_:)``, ``bytes``, ``string``): nothing is copied on receive. Sending a message
/// through ``Socket/send(_:flags:)`` shares its content with libzmq by reference count
/// (`zmq_msg_copy`), so a message can be forwarded any number of times without copying its bytes.
///
/// Thread rules: a message is not shared between threads (it is not `Sendable`); hand its
/// ``bytes`` across instead.
public final class Message {
    var raw = zmq_msg_t()

    /// An empty frame (`zmq_msg_init`).
    public init() {
        zmq_msg_init(&raw)
    }

    /// A frame holding a copy of `bytes` (`zmq_msg_init_size`).
    public convenience init(_ bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { buffer in
            if let base = bytes.baseAddress, bytes.count > 0 {
                buffer.baseAddress!.copyMemory(from: base, byteCount: bytes.count)
            }
        }
    }

    /// A frame holding a copy of `bytes`.
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// A frame holding the UTF-8 bytes of `string`.
    public convenience init(_ string: String) {
        self.init(string.utf8)
    }

    /// A frame of `count` bytes that `initializer` writes in place (`zmq_msg_init_size`): the
    /// zero-copy way to build a large payload, since the bytes are written straight into the
    /// buffer libzmq sends.
    public init(count: Int, initializingWith initializer: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        if zmq_msg_init_size(&raw, count) != 0 {
            // Only ENOMEM is documented here; there is nothing sensible to continue with.
            fatalError("zmq_msg_init_size(\(count)): \(String(cString: zmq_strerror(zmq_errno())))")
        }
        let buffer = UnsafeMutableRawBufferPointer(start: zmq_msg_data(&raw), count: count)
        try initializer(buffer)
    }

    /// A frame that takes ownership of `buffer` without copying it (`zmq_msg_init_data`); libzmq
    /// deallocates it once it has been sent. `buffer` must have been allocated with
    /// `UnsafeMutableRawBufferPointer.allocate` and must not be used by the caller afterwards.
    public init(takingOwnershipOf buffer: UnsafeMutableRawBufferPointer) {
        let free: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { data, _ in
            data?.deallocate()
        }
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            // An empty allocation is still an allocation the caller handed over.
            buffer.baseAddress?.deallocate()
            zmq_msg_init(&raw)
            return
        }
        if zmq_msg_init_data(&raw, base, buffer.count, free, nil) != 0 {
            fatalError("zmq_msg_init_data: \(String(cString: zmq_strerror(zmq_errno())))")
        }
    }

    deinit {
        zmq_msg_close(&raw)
    }

    /// The number of bytes in this frame (`zmq_msg_size`).
    public var count: Int { zmq_msg_size(&raw) }

    /// Whether this frame holds no bytes.
    public var isEmpty: Bool { count == 0 }

    /// Calls `body` with the frame's bytes, without copying them.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let count = zmq_msg_size(&raw)
        guard count > 0, let data = zmq_msg_data(&raw) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: data, count: count))
    }

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// The frame's bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    public var string: String {
        withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the frame's bytes equal `other`'s.
    public func contentEquals(_ other: some Collection<UInt8>) -> Bool {
        withUnsafeBytes { mine in mine.count == other.count && mine.elementsEqual(other) }
    }
}

extension Message: CustomStringConvertible {
    public var description: String {
        let shown = withUnsafeBytes { buffer in
            buffer.prefix(32).map { byte in
                (0x20..<0x7f).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
            }.joined()
        }
        return "Message(\(count) bytes: \(shown)\(count > 32 ? "…" : ""))"
    }
}
