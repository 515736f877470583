public import ZeroMQ

/// A received message taken apart: the routing id (on a ROUTER), the command, and the body frames.
///
/// Validation happens here, before anything looks at the body: the tag, the command byte, the
/// number of body frames for the command, and the size of fixed-size frames.
public struct Envelope {
    /// The sender's routing id, when received on a ROUTER socket.
    public let routingID: Message?
    public let command: Command
    /// The frames after the command.
    public let body: ArraySlice<Message>

    /// Parses `frames` as received. With `fromRouter`, frame 0 is the routing id ROUTER prepended.
    public init(frames: [Message], fromRouter: Bool) throws(ProtocolError) {
        var index = 0
        if fromRouter {
            guard !frames.isEmpty else { throw .malformed("no frames") }
            routingID = frames[0]
            index = 1
        } else {
            routingID = nil
        }
        guard index < frames.count else { throw .notConveyor }
        let tag = frames[index]
        if !tag.contentEquals(ProtocolTag.current) {
            let isConveyor = tag.withUnsafeBytes { $0.starts(with: ProtocolTag.family) } && tag.count <= 16
            if isConveyor { throw .unsupportedVersion(tag.string) }
            throw .notConveyor
        }
        index += 1
        guard index < frames.count else { throw .unknownCommand("(missing command frame)") }
        let commandFrame = frames[index]
        guard commandFrame.count == 1 else {
            throw .unknownCommand("(command frame has \(commandFrame.count) bytes; expected 1)")
        }
        let byte = commandFrame.withUnsafeBytes { $0[0] }
        guard let command = Command(rawValue: byte) else {
            throw .unknownCommand("0x" + String(byte, radix: 16))
        }
        self.command = command
        body = frames[(index + 1)...]
        try validateShape()
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
    public subscript(_ i: Int) -> Message { body[body.startIndex + i] }

    /// The body split into groups of the command's group size.
    public var groups: [ArraySlice<Message>] {
        guard let size = command.groupSize else { return [body] }
        return stride(from: body.startIndex, to: body.endIndex, by: size).map { body[$0..<($0 + size)] }
    }
}

/// Builds an outgoing message frame by frame: the routing id (when sending on a ROUTER), the tag,
/// the command, then body frames.
public struct OutgoingMessage {
    public private(set) var frames: [Message] = []

    public init(to routingID: Message? = nil, _ command: Command) {
        if let routingID { frames.append(routingID) }
        frames.append(Message(ProtocolTag.current))
        frames.append(Message(CollectionOfOne(command.rawValue)))
    }

    public mutating func append(_ frame: Message) { frames.append(frame) }
    public mutating func append(_ bytes: [UInt8]) { frames.append(Message(bytes)) }
    public mutating func append(_ text: String) { frames.append(Message(text)) }
    public mutating func append(_ bytes: UnsafeRawBufferPointer) { frames.append(Message(bytes)) }

    /// Whether only the header has been added.
    public var bodyIsEmpty: Bool { frames.count <= 3 }
    public var frameCount: Int { frames.count }

    /// Sends all frames on `socket`.
    @discardableResult
    public func send(on socket: Socket, flags: SendFlags = []) throws(ZMQError) -> Bool {
        try socket.send(multipart: frames, flags: flags)
    }
}
