public import ZeroMQ

/// A received message taken apart: the routing id (on a ROUTER), the command, and the body frames.
///
/// Validation happens here, before anything looks at the body: the tag, the command byte, the
/// number of body frames for the command, and the size of fixed-size frames.
public struct Envelope {
    /// The sender's routing id, when received on a ROUTER socket.
    public let routingID: Frame?
    public let command: Command
    /// The frames after the command.
    public let body: Slice<Multipart>

    /// Parses `message` as received. With `fromRouter`, frame 0 is the routing id ROUTER prepended.
    public init(_ message: Multipart, fromRouter: Bool) throws(ProtocolError) {
        var index = 0
        if fromRouter {
            guard !message.isEmpty else { throw .malformed("no frames") }
            routingID = message[0]
            index = 1
        } else {
            routingID = nil
        }
        guard index < message.count else { throw .notConveyor }
        let tag = message[index]
        if !tag.contentEquals(ProtocolTag.current) {
            let isConveyor = tag.withUnsafeBytes { $0.starts(with: ProtocolTag.family) } && tag.count <= 16
            if isConveyor { throw .unsupportedVersion(tag.string) }
            throw .notConveyor
        }
        index += 1
        guard index < message.count else { throw .unknownCommand("(missing command frame)") }
        let commandFrame = message[index]
        guard commandFrame.count == 1 else {
            throw .unknownCommand("(command frame has \(commandFrame.count) bytes; expected 1)")
        }
        let byte = commandFrame.withUnsafeBytes { $0[0] }
        guard let command = Command(rawValue: byte) else {
            throw .unknownCommand("0x" + String(byte, radix: 16))
        }
        self.command = command
        body = message[(index + 1)...]
        try validateShape()
    }

    /// Parses frames received as separate ``Message``s.
    public init(frames: [Message], fromRouter: Bool) throws(ProtocolError) {
        try self.init(Multipart(frames.map(\.bytes)), fromRouter: fromRouter)
    }

    private func validateShape() throws(ProtocolError) {
        if let group = command.groupSize {
            guard !body.isEmpty, body.count % group == 0 else {
                throw .malformed("\(command) needs one or more groups of \(group) frames; got \(body.count) frames")
            }
            return
        }
        let expected: Int
        switch command {
        case .cancel, .status, .ready, .statsReply, .deadLettersReply, .error: expected = 1
        case .stats, .heartbeat, .disconnect: expected = 0
        case .cancelReply, .deadLetters: expected = 2
        case .statusReply: expected = 5
        default: expected = body.count
        }
        guard body.count == expected else {
            throw .malformed("\(command) takes \(expected) frame\(expected == 1 ? "" : "s") after the command; got \(body.count)")
        }
    }

    /// Body frame `i` (0-based, after the command).
    public subscript(_ i: Int) -> Frame { body[body.startIndex + i] }

    /// The body split into groups of the command's group size.
    public var groups: [Slice<Multipart>] {
        guard let size = command.groupSize else { return [body] }
        return stride(from: body.startIndex, to: body.endIndex, by: size).map { body[$0..<($0 + size)] }
    }
}

/// Builds an outgoing message frame by frame: the routing id (when sending on a ROUTER), the tag,
/// the command, then body frames.
///
/// The frames are gathered in one growing byte buffer (no object per frame) and sent with one
/// `zmq_send` each: on the hot path, where every task crosses several of these, that saves the
/// allocations and reference counting of a `Message` per frame.
public struct OutgoingMessage {
    private var storage: [UInt8] = []
    /// The end offset of each frame in `storage`.
    private var ends: [Int] = []
    private var headerFrames = 0

    public init(to routingID: Message? = nil, _ command: Command) {
        self.init(command, routingID: routingID?.bytes)
    }

    public init(to routingID: Frame, _ command: Command) {
        self.init(command, routingID: routingID.bytes)
    }

    public init(to routingID: [UInt8], _ command: Command) {
        self.init(command, routingID: routingID)
    }

    private init(_ command: Command, routingID: [UInt8]?) {
        storage.reserveCapacity(128)
        if let routingID { append(routingID) }
        append(ProtocolTag.current)
        storage.append(command.rawValue)
        ends.append(storage.count)
        headerFrames = ends.count
    }

    public mutating func append(_ frame: Message) {
        frame.withUnsafeBytes { storage.append(contentsOf: $0) }
        ends.append(storage.count)
    }

    public mutating func append(_ frame: Frame) {
        frame.withUnsafeBytes { storage.append(contentsOf: $0) }
        ends.append(storage.count)
    }

    public mutating func append(_ bytes: [UInt8]) {
        storage.append(contentsOf: bytes)
        ends.append(storage.count)
    }

    public mutating func append(_ text: String) {
        storage.append(contentsOf: text.utf8)
        ends.append(storage.count)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes)
        ends.append(storage.count)
    }

    /// The frames, as separate messages (for inspection; sending does not build these).
    public var frames: [Message] {
        var start = 0
        return ends.map { end in
            defer { start = end }
            return Message(storage[start..<end])
        }
    }

    /// Whether only the header has been added.
    public var bodyIsEmpty: Bool { ends.count <= headerFrames }
    public var frameCount: Int { ends.count }

    /// Sends all frames on `socket`, one `zmq_send` each.
    /// - Returns: `false` when `.dontWait` was given and the message could not be queued.
    @discardableResult
    public func send(on socket: Socket, flags: SendFlags = []) throws(ZMQError) -> Bool {
        try storage.withUnsafeBytes { buffer in
            Result { () throws(ZMQError) -> Bool in
                var start = 0
                for (index, end) in ends.enumerated() {
                    let more: SendFlags = index < ends.count - 1 ? .more : []
                    // Once the first frame is queued, libzmq takes the rest of the message whole.
                    guard try socket.send(UnsafeRawBufferPointer(rebasing: buffer[start..<end]), flags: flags.union(more))
                    else { return false }
                    start = end
                }
                return true
            }
        }.get()
    }
}
