import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole multipart message held in one contiguous byte buffer: the receive path of hot loops.
///
/// ``Socket/receiveMultipart(into:flags:)`` copies each frame's bytes out of libzmq into one
/// growing buffer and records where each frame ends, so a message of any number of frames costs no
/// object per frame (a ``Message`` per frame is an allocation, a `zmq_msg_t` and a `deinit` each).
/// Receiving into the same `Multipart` again reuses its buffer when no ``Frame`` of the last
/// message is still held; a held frame keeps its bytes (the buffer is copied on write).
///
/// Copying is cheap next to the network for the small frames of a task queue; for multi-megabyte
/// payloads that should be forwarded without a copy, receive ``Message``s instead.
public struct Multipart: RandomAccessCollection, Sendable {
    @usableFromInline var storage: [UInt8] = []
    /// The end offset of each frame in `storage`.
    @usableFromInline var ends: [Int] = []

    public init() {}

    /// A message made of copies of `frames` (for tests and for messages built by hand).
    public init(_ frames: some Sequence<some Collection<UInt8>>) {
        for frame in frames { append(frame) }
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { ends.count }

    @inlinable
    public subscript(position: Int) -> Frame {
        Frame(storage: storage, start: position == 0 ? 0 : ends[position - 1], end: ends[position])
    }

    /// Total bytes over all frames.
    public var byteCount: Int { storage.count }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }

    mutating func append(_ frame: some Collection<UInt8>) {
        storage.append(contentsOf: frame)
        ends.append(storage.count)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes)
        ends.append(storage.count)
    }
}

/// One frame of a ``Multipart``: a view of its bytes (no copy until asked for ``bytes`` or
/// ``string``). Holding a frame keeps its message's buffer alive.
public struct Frame: Sendable, Equatable {
    @usableFromInline let storage: [UInt8]
    @usableFromInline let start: Int
    @usableFromInline let end: Int

    @inlinable
    init(storage: [UInt8], start: Int, end: Int) {
        self.storage = storage
        self.start = start
        self.end = end
    }

    /// A frame holding `bytes`.
    public init(_ bytes: [UInt8]) {
        self.init(storage: bytes, start: 0, end: bytes.count)
    }

    /// The bytes at `range` of this frame (offsets from its start), without copying.
    public func subframe(_ range: Range<Int>) -> Frame {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "subframe out of bounds")
        return Frame(storage: storage, start: start + range.lowerBound, end: start + range.upperBound)
    }

    @inlinable public var count: Int { end - start }
    @inlinable public var isEmpty: Bool { start == end }

    /// Calls `body` with the frame's bytes, without copying them.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        // Array.withUnsafeBytes rethrows untyped errors: carry the typed one out in a Result.
        try storage.withUnsafeBytes { buffer in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: buffer[start..<end])) }
        }.get()
    }

    /// A copy of the frame's bytes.
    @inlinable public var bytes: [UInt8] { Array(storage[start..<end]) }

    /// The frame's bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    @inlinable public var string: String { String(decoding: storage[start..<end], as: UTF8.self) }

    /// Whether the frame's bytes equal `other`.
    public func contentEquals(_ other: [UInt8]) -> Bool {
        count == other.count && storage.withUnsafeBufferPointer { mine in
            other.withUnsafeBufferPointer { theirs in
                count == 0 || memcmp(mine.baseAddress! + start, theirs.baseAddress!, count) == 0
            }
        }
    }

    /// Whether the frame's bytes equal `other`'s.
    public func contentEquals(_ other: some Collection<UInt8>) -> Bool {
        count == other.count && storage[start..<end].elementsEqual(other)
    }

    public static func == (lhs: Frame, rhs: Frame) -> Bool {
        lhs.storage[lhs.start..<lhs.end].elementsEqual(rhs.storage[rhs.start..<rhs.end])
    }
}

extension Frame: CustomStringConvertible {
    public var description: String {
        let shown = storage[start..<end].prefix(32).map { byte in
            (0x20..<0x7f).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }.joined()
        return "Frame(\(count) bytes: \(shown)\(count > 32 ? "…" : ""))"
    }
}

extension Socket {
    /// Receives every frame of one multipart message into `message`, replacing what it held.
    /// - Returns: `false` when `.dontWait` was given and no message was waiting.
    public func receiveMultipart(into message: inout Multipart, flags: ReceiveFlags = []) throws(ZMQError) -> Bool {
        var part = zmq_msg_t()
        zmq_msg_init(&part)
        defer { zmq_msg_close(&part) }
        let first = try zmqCall("receive on \(type) socket") { zmq_msg_recv(&part, handle, flags.rawValue) }
        if case .wouldBlock = first { return false }
        message.removeAll()
        while true {
            message.append(UnsafeRawBufferPointer(start: zmq_msg_data(&part), count: zmq_msg_size(&part)))
            // The rest of a multipart message is already here: libzmq delivers messages whole.
            guard zmq_msg_more(&part) != 0 else { return true }
            let next = try zmqCall("receive on \(type) socket") { zmq_msg_recv(&part, handle, 0) }
            if case .wouldBlock = next { return true }
        }
    }
}
