public import ZeroMQ

/// A received message taken apart: the routing id (on a ROUTER), the command, and the body frames.
///
/// Validation happens here, before anything looks at the body: the tag (one of
/// ``ProtocolVersion/supported``), the command byte (known, and part of the tag's version), and
/// the number of body frames for the command. Fields inside the body (options, meta, JSON) are
/// checked by their own decoders, in the message's ``version``.
public struct Envelope {
    /// The sender's routing id, when received on a ROUTER socket.
    public let routingID: Frame?
    /// The version of the message's tag (`CVY2` or `CVY3`): decode its options or meta fields in
    /// it, and answer in it.
    public let version: ProtocolVersion
    public let command: Command
    /// The body after the command: its frames, or for a command that carries groups (several
    /// tasks or results), the fields of its one packed frame, group after group.
    public let body: [Frame]

    /// Groups in one message, at most: a 16 MiB frame of empty fields would otherwise cost
    /// 100 MB of field views.
    public static let maxGroups = 65_536

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
        guard let version = tag.withUnsafeBytes({ ProtocolVersion(tag: $0) }) else {
            let isConveyor = tag.withUnsafeBytes { $0.starts(with: ProtocolTag.family) } && tag.count <= 16
            if isConveyor { throw .unsupportedVersion(tag.string) }
            throw .notConveyor
        }
        self.version = version
        index += 1
        guard index < message.count else { throw .unknownCommand("(missing command frame)") }
        let commandFrame = message[index]
        guard commandFrame.count == 1 else {
            throw .unknownCommand("(command frame has \(commandFrame.count) bytes; expected 1)")
        }
        let byte = commandFrame.withUnsafeBytes { $0[0] }
        guard let command = Command(rawValue: byte), command.since <= version else {
            throw .unknownCommand("0x" + String(byte, radix: 16))
        }
        self.command = command
        if let size = command.groupSize {
            guard message.count == index + 2 else {
                throw .malformed("\(command) takes one packed frame after the command; got \(message.count - index - 1) frames")
            }
            body = try Self.unpack(message[index + 1], groupSize: size, command: command)
        } else {
            body = Array(message[(index + 1)...])
        }
        try validateShape()
    }

    /// The fields of a packed frame: each a 4-byte big-endian length and that many bytes.
    private static func unpack(_ frame: Frame, groupSize: Int, command: Command) throws(ProtocolError) -> [Frame] {
        var fields: [Frame] = []
        var offset = 0
        let count = frame.count
        try frame.withUnsafeBytes { bytes throws(ProtocolError) in
            while offset < count {
                guard count - offset >= 4 else {
                    throw .malformed("\(command) field \(fields.count) has a truncated length (\(count - offset) bytes left)")
                }
                let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                offset += 4
                guard length <= count - offset else {
                    throw .malformed("\(command) field \(fields.count) claims \(length) bytes; \(count - offset) are left")
                }
                guard fields.count < maxGroups * groupSize else {
                    throw .malformed("\(command) carries more than \(maxGroups) groups")
                }
                fields.append(frame.subframe(offset..<offset + length))
                offset += length
            }
        }
        return fields
    }

    /// Parses frames received as separate ``Message``s.
    public init(frames: [Message], fromRouter: Bool) throws(ProtocolError) {
        try self.init(Multipart(frames.map(\.bytes)), fromRouter: fromRouter)
    }

    /// Parses frames given as byte arrays (for tests and tools).
    public init(frames: [[UInt8]], fromRouter: Bool) throws(ProtocolError) {
        try self.init(Multipart(frames), fromRouter: fromRouter)
    }

    private func validateShape() throws(ProtocolError) {
        if let group = command.groupSize {
            guard !body.isEmpty, body.count % group == 0 else {
                throw .malformed("\(command) needs one or more groups of \(group) fields; got \(body.count) fields")
            }
            return
        }
        let expected: Int
        switch command {
        case .cancel, .status, .ready, .statsReply, .deadLettersReply, .error, .hello, .purge, .purgeReply, .read, .resume, .notice,
             .tasks, .tasksReply, .pauseReply, .scheduleReply, .limit, .limitReply:
            expected = 1
        case .stats, .heartbeat, .disconnect: expected = 0
        case .cancelReply, .deadLetters, .pause: expected = 2
        case .statusReply: expected = 5
        case .schedule: expected = 3
        default: expected = body.count
        }
        guard body.count == expected else {
            throw .malformed("\(command) takes \(expected) frame\(expected == 1 ? "" : "s") after the command; got \(body.count)")
        }
    }

    /// Body frame `i` (0-based, after the command).
    public subscript(_ i: Int) -> Frame { body[body.startIndex + i] }

    /// The body split into groups of the command's group size.
    public var groups: [ArraySlice<Frame>] {
        guard let size = command.groupSize else { return [body[...]] }
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
    /// Whether body fields go into one packed frame (commands that carry groups).
    private var packed = false
    /// Body fields added so far.
    public private(set) var fieldCount = 0
    /// The version of the tag this message carries; ``append(_:)-(TaskOptions)`` and
    /// ``append(_:)-(DispatchMeta)`` encode in it.
    public let version: ProtocolVersion
    /// The message's command.
    public let command: Command

    /// A message of `version` (by default the current one). A broker answers each peer in the
    /// version that peer's messages came in (``Envelope/version``).
    public init(to routingID: Message? = nil, _ command: Command, version: ProtocolVersion = .current) {
        self.init(command, routingID: routingID?.bytes, version: version)
    }

    public init(to routingID: Frame, _ command: Command, version: ProtocolVersion = .current) {
        self.init(command, routingID: routingID.bytes, version: version)
    }

    public init(to routingID: [UInt8], _ command: Command, version: ProtocolVersion = .current) {
        self.init(command, routingID: routingID, version: version)
    }

    private init(_ command: Command, routingID: [UInt8]?, version: ProtocolVersion) {
        precondition(command.since <= version, "\(command) does not exist in protocol \(version)")
        self.version = version
        self.command = command
        storage.reserveCapacity(128)
        if let routingID { append(routingID) }
        append(version.tag)
        storage.append(command.rawValue)
        ends.append(storage.count)
        headerFrames = ends.count
        fieldCount = 0
        if command.groupSize != nil {
            packed = true
            ends.append(storage.count)
        }
    }

    private mutating func appendField(_ count: Int, _ write: (inout [UInt8]) -> Void) {
        fieldCount += 1
        if packed {
            storage.append(UInt8(truncatingIfNeeded: count >> 24))
            storage.append(UInt8(truncatingIfNeeded: count >> 16))
            storage.append(UInt8(truncatingIfNeeded: count >> 8))
            storage.append(UInt8(truncatingIfNeeded: count))
            write(&storage)
            ends[ends.count - 1] = storage.count
        } else {
            write(&storage)
            ends.append(storage.count)
        }
    }

    /// Adds a body frame, or for a command that carries groups, a field of its packed frame.
    public mutating func append(_ frame: Message) {
        frame.withUnsafeBytes { bytes in appendField(bytes.count) { $0.append(contentsOf: bytes) } }
    }

    public mutating func append(_ frame: Frame) {
        frame.withUnsafeBytes { bytes in appendField(bytes.count) { $0.append(contentsOf: bytes) } }
    }

    public mutating func append(_ bytes: [UInt8]) {
        appendField(bytes.count) { $0.append(contentsOf: bytes) }
    }

    public mutating func append(_ text: String) {
        appendField(text.utf8.count) { $0.append(contentsOf: text.utf8) }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        appendField(bytes.count) { $0.append(contentsOf: bytes) }
    }

    /// Adds a task's options field, encoded in this message's version, without an intermediate array.
    public mutating func append(_ options: TaskOptions) {
        let version = version
        appendField(options.encodedCount(for: version)) { options.append(to: &$0, version: version) }
    }

    /// Adds a dispatch meta field, encoded in this message's version.
    public mutating func append(_ meta: DispatchMeta) {
        let version = version
        appendField(meta.encodedCount(for: version)) { meta.append(to: &$0, version: version) }
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
    public var bodyIsEmpty: Bool { fieldCount == 0 }
    public var frameCount: Int { ends.count }
    /// Bytes held so far, over all frames.
    public var byteCount: Int { storage.count }
    /// Bytes of the frames after the routing id: what the receiver reads.
    public var deliveredByteCount: Int { headerFrames == 3 ? storage.count - ends[0] : storage.count }
    /// The routing id frame, for a message built to be sent on a ROUTER.
    public var routingID: ArraySlice<UInt8>? { headerFrames == 3 ? storage[0..<ends[0]] : nil }
    /// Whether a message carrying groups has reached its size target
    /// (``Limits/packedMessageTarget``) and should be sent.
    public var isFull: Bool { storage.count >= Limits.packedMessageTarget }

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
