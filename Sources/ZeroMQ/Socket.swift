import CZMQ

/// A ZeroMQ socket (`zmq_socket`).
///
/// Thread rules: a socket belongs to one thread. Create it on the thread that uses it and never
/// hand it to another; it is deliberately not `Sendable`. Threads talk to a socket's owner through
/// `inproc://` sockets of their own or through Swift synchronization.
///
/// The socket closes itself (`zmq_close`) when released, honouring its ``SocketOption/linger``,
/// and keeps its ``Context`` alive until then.
public final class Socket {
    /// The socket's pattern.
    public let type: SocketType
    /// The context the socket was created in; kept alive as long as the socket.
    public let context: Context
    let handle: UnsafeMutableRawPointer

    /// Creates a socket of `type` in `context` (`zmq_socket`).
    public init(_ context: Context, type: SocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError(code: zmq_errno(), operation: "create \(type) socket")
        }
        self.type = type
        self.context = context
        self.handle = handle
    }

    deinit {
        zmq_close(handle)
    }

    // MARK: Endpoints

    /// Binds to `endpoint` (`zmq_bind`). A `tcp://HOST:*` endpoint binds a free port; read it back
    /// with ``lastEndpoint``.
    public func bind(_ endpoint: String) throws(ZMQError) {
        try zmqCheck("bind \(endpoint)") { zmq_bind(handle, endpoint) }
    }

    /// Connects to `endpoint` (`zmq_connect`). The connection itself is made in the background.
    public func connect(_ endpoint: String) throws(ZMQError) {
        try zmqCheck("connect \(endpoint)") { zmq_connect(handle, endpoint) }
    }

    /// Stops listening on `endpoint` (`zmq_unbind`).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        try zmqCheck("unbind \(endpoint)") { zmq_unbind(handle, endpoint) }
    }

    /// Disconnects from `endpoint` (`zmq_disconnect`).
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try zmqCheck("disconnect \(endpoint)") { zmq_disconnect(handle, endpoint) }
    }

    /// The endpoint last bound or connected, with a wildcard port resolved to the port the OS
    /// chose (`ZMQ_LAST_ENDPOINT`).
    public var lastEndpoint: String {
        get throws(ZMQError) { try get(.lastEndpoint) }
    }

    // MARK: Sending

    /// Sends one frame holding a copy of `bytes` (`zmq_send`).
    /// - Returns: `false` when `.dontWait` was given and the send would have blocked.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, flags: SendFlags = []) throws(ZMQError) -> Bool {
        let result = try zmqCall("send on \(type) socket") {
            zmq_send(handle, bytes.baseAddress, bytes.count, flags.rawValue)
        }
        if case .wouldBlock = result { return false }
        return true
    }

    /// Sends one frame holding a copy of `bytes` (`zmq_send`).
    @discardableResult
    public func send(_ bytes: [UInt8], flags: SendFlags = []) throws(ZMQError) -> Bool {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(ZMQError) in try send(buffer, flags: flags) }
        }.get()
    }

    /// Sends one frame holding the UTF-8 bytes of `string` (`zmq_send`).
    @discardableResult
    public func send(_ string: String, flags: SendFlags = []) throws(ZMQError) -> Bool {
        var string = string
        return try string.withUTF8 { utf8 in
            Result { () throws(ZMQError) in try send(UnsafeRawBufferPointer(utf8), flags: flags) }
        }.get()
    }

    /// Sends `message` without copying its bytes (`zmq_msg_copy`, then `zmq_msg_send`); `message`
    /// stays intact and can be sent again.
    @discardableResult
    public func send(_ message: Message, flags: SendFlags = []) throws(ZMQError) -> Bool {
        var outgoing = zmq_msg_t()
        zmq_msg_init(&outgoing)
        zmq_msg_copy(&outgoing, &message.raw)
        let result: CallResult
        do {
            result = try zmqCall("send on \(type) socket") { zmq_msg_send(&outgoing, handle, flags.rawValue) }
        } catch {
            zmq_msg_close(&outgoing)
            throw error
        }
        if case .wouldBlock = result {
            zmq_msg_close(&outgoing)
            return false
        }
        return true
    }

    /// Sends the frames of one multipart message. Frames may be empty.
    /// - Returns: `false` when `.dontWait` was given and the first frame would have blocked; once
    ///   the first frame is queued, libzmq delivers all or none of them.
    @discardableResult
    public func send(multipart frames: [[UInt8]], flags: SendFlags = []) throws(ZMQError) -> Bool {
        for (index, frame) in frames.enumerated() {
            let more: SendFlags = index < frames.count - 1 ? .more : []
            let sent = try send(frame, flags: flags.union(more))
            if !sent { return false }
        }
        return true
    }

    /// Sends the frames of one multipart message without copying their bytes.
    @discardableResult
    public func send(multipart frames: [Message], flags: SendFlags = []) throws(ZMQError) -> Bool {
        for (index, frame) in frames.enumerated() {
            let more: SendFlags = index < frames.count - 1 ? .more : []
            let sent = try send(frame, flags: flags.union(more))
            if !sent { return false }
        }
        return true
    }

    // MARK: Receiving

    /// Receives one frame (`zmq_msg_recv`) without copying its bytes.
    /// - Returns: `nil` when `.dontWait` was given (or a receive timeout passed) and nothing was
    ///   waiting.
    public func receive(flags: ReceiveFlags = []) throws(ZMQError) -> Message? {
        let message = Message()
        let result = try zmqCall("receive on \(type) socket") { zmq_msg_recv(&message.raw, handle, flags.rawValue) }
        if case .wouldBlock = result { return nil }
        return message
    }

    /// Receives one frame into `buffer` (`zmq_recv`): no allocation at all, for hot loops that
    /// reuse one buffer.
    /// - Returns: the frame's full size, which is larger than `buffer.count` when the frame was
    ///   truncated to fit; `nil` when `.dontWait` was given and nothing was waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: ReceiveFlags = []) throws(ZMQError) -> Int? {
        let result = try zmqCall("receive on \(type) socket") { zmq_recv(handle, buffer.baseAddress, buffer.count, flags.rawValue) }
        guard case .done(let size) = result else { return nil }
        return Int(size)
    }

    /// Whether the frame last received has more frames after it (`ZMQ_RCVMORE`).
    public var hasMoreFrames: Bool {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_RCVMORE, &value, &size)
        return value != 0
    }

    /// Receives every frame of one multipart message.
    /// - Returns: `nil` when `.dontWait` was given and no message was waiting.
    public func receiveMultipart(flags: ReceiveFlags = []) throws(ZMQError) -> [Message]? {
        guard let first = try receive(flags: flags) else { return nil }
        var frames = [first]
        while hasMoreFrames {
            // The rest of a multipart message is already here: libzmq delivers messages whole.
            guard let next = try receive() else { break }
            frames.append(next)
        }
        return frames
    }

    /// Receives one frame into a new array (`zmq_recv` semantics, but never truncating).
    public func receiveBytes(flags: ReceiveFlags = []) throws(ZMQError) -> [UInt8]? {
        try receive(flags: flags)?.bytes
    }

    /// The events the socket is ready for now (`ZMQ_EVENTS`), without blocking.
    public var readiness: PollEvents {
        PollEvents(rawValue: Int16(truncatingIfNeeded: (try? get(.events)) ?? 0))
    }
}
