import ConveyorProtocol
import Testing
import ZeroMQ

@Suite("Outgoing frames")
struct OutgoingMessageTests {
    /// Every command and its byte, copied from docs/PROTOCOL.md §3 and Command.swift. A command
    /// added without a line here fails `commandRawValues`.
    static let commandBytes: [(Command, UInt8, String)] = [
        (.submit, 0x01, "SUBMIT"), (.cancel, 0x02, "CANCEL"), (.status, 0x03, "STATUS"), (.stats, 0x04, "STATS"),
        (.heartbeat, 0x05, "HEARTBEAT"), (.disconnect, 0x06, "DISCONNECT"), (.deadLetters, 0x07, "DEAD_LETTERS"), (.hello, 0x08, "HELLO"),
        (.accepted, 0x11, "ACCEPTED"), (.rejected, 0x12, "REJECTED"), (.result, 0x13, "RESULT"),
        (.cancelReply, 0x14, "CANCEL_REPLY"), (.statusReply, 0x15, "STATUS_REPLY"), (.statsReply, 0x16, "STATS_REPLY"),
        (.deadLettersReply, 0x17, "DEAD_LETTERS_REPLY"), (.purge, 0x09, "PURGE"), (.purgeReply, 0x18, "PURGE_REPLY"),
        (.error, 0x1F, "ERROR"), (.ready, 0x21, "READY"), (.dispatch, 0x22, "DISPATCH"), (.done, 0x23, "DONE"),
        (.renew, 0x24, "RENEW"), (.read, 0x0A, "READ"), (.resume, 0x19, "RESUME"),
        (.notice, 0x1A, "NOTICE"), (.revoke, 0x25, "REVOKE"), (.tasks, 0x0B, "TASKS"), (.tasksReply, 0x1B, "TASKS_REPLY"),
        (.pause, 0x0C, "PAUSE"), (.pauseReply, 0x1C, "PAUSE_REPLY"),
        (.schedule, 0x0D, "SCHEDULE"), (.scheduleReply, 0x1D, "SCHEDULE_REPLY"), (.limit, 0x0E, "LIMIT"), (.limitReply, 0x1E, "LIMIT_REPLY"),
    ]

    @Test("The protocol tag is the four ASCII bytes CVY3 and the family prefix is CVY")
    func tagBytes() {
        #expect(ProtocolTag.current == [0x43, 0x56, 0x59, 0x33])
        #expect(ProtocolTag.family == [0x43, 0x56, 0x59])
    }

    @Test("Every command has the byte value the protocol document gives it, and no command is untested")
    func commandRawValues() {
        for (command, byte, name) in Self.commandBytes {
            #expect(command.rawValue == byte, "\(command)")
            #expect(Command(rawValue: byte) == command)
            #expect(command.description == name)
        }
        #expect(Command.allCases.count == Self.commandBytes.count)
        #expect(Set(Command.allCases.map(\.rawValue)) == Set(Self.commandBytes.map(\.1)))
    }

    @Test("Group commands declare their group sizes; the rest have none")
    func groupSizes() {
        let expected: [Command: Int] = [.submit: 4, .result: 4, .dispatch: 4, .done: 4, .rejected: 2, .accepted: 1, .renew: 1, .revoke: 1]
        for command in Command.allCases {
            #expect(command.groupSize == expected[command], "\(command)")
        }
    }

    @Test("Without a routing id a message starts with the tag frame then the one-byte command frame (and an empty packed frame for group commands)")
    func headerWithoutRoutingID() {
        for (command, byte, _) in Self.commandBytes {
            let message = OutgoingMessage(command)
            let packedFrame: [[UInt8]] = command.groupSize == nil ? [] : [[]]
            #expect(message.frames.map(\.bytes) == [cvy3, [byte]] + packedFrame, "\(command)")
            #expect(message.frameCount == 2 + packedFrame.count)
            #expect(message.fieldCount == 0 && message.bodyIsEmpty)
        }
    }

    @Test("With a routing id the routing frame comes first, then the tag and the command")
    func headerWithRoutingID() {
        let routingID: [UInt8] = [0x00, 0x6B, 0x8B, 0x45, 0x67]
        for (command, byte, _) in Self.commandBytes {
            let message = OutgoingMessage(to: Message(routingID), command)
            let packedFrame: [[UInt8]] = command.groupSize == nil ? [] : [[]]
            #expect(message.frames.map(\.bytes) == [routingID, cvy3, [byte]] + packedFrame, "\(command)")
            #expect(message.frameCount == 3 + packedFrame.count)
        }
    }

    @Test("Fields of a group command go into one packed frame, each with its 4-byte big-endian length, in order")
    func packedFieldsInOrder() {
        var message = OutgoingMessage(.submit)
        message.append("job-1")
        message.append(Array("echo".utf8))
        message.append([])
        message.append(Message(Array(#"{"n":1}"#.utf8)))
        [UInt8]([0xDE, 0xAD]).withUnsafeBytes { message.append($0) }
        let fields: [[UInt8]] = [Array("job-1".utf8), Array("echo".utf8), [], Array(#"{"n":1}"#.utf8), [0xDE, 0xAD]]
        #expect(message.frames.map(\.bytes) == [cvy3, [0x01], packed(fields)])
        #expect(message.frames[2].bytes.prefix(9) == [0, 0, 0, 5, 0x6A, 0x6F, 0x62, 0x2D, 0x31])
        #expect(message.frameCount == 3)
        #expect(message.fieldCount == 5)
    }

    @Test("Body frames of a command without groups follow the header as separate frames")
    func bodyFramesInOrder() {
        var message = OutgoingMessage(.statusReply)
        message.append("job-1")
        message.append("done")
        message.append("ok")
        message.append([])
        [UInt8]([0xDE, 0xAD]).withUnsafeBytes { message.append($0) }
        #expect(message.frames.map(\.bytes) == [cvy3, [0x15], Array("job-1".utf8), Array("done".utf8), Array("ok".utf8), [],
                                                [0xDE, 0xAD]])
        #expect(message.frameCount == 7)
    }

    @Test("A group message is full once its packed frame passes the size target")
    func fullAtTheSizeTarget() {
        var message = OutgoingMessage(.result)
        let body = [UInt8](repeating: 0x31, count: 100_000)
        var appended = 0
        while !message.isFull {
            message.append(body)
            appended += 1
        }
        #expect(appended == (Limits.packedMessageTarget + 100_003) / 100_004)
        #expect(message.byteCount >= Limits.packedMessageTarget)
    }

    @Test("bodyIsEmpty is true until the first body frame is added after a routed header")
    func bodyIsEmptyWithRoutingID() {
        var message = OutgoingMessage(to: Message("peer"), .accepted)
        #expect(message.bodyIsEmpty)
        message.append("job-1")
        #expect(!message.bodyIsEmpty)
    }

    @Test("A built message parses back into the same command and body")
    func builtMessageParses() throws {
        var message = OutgoingMessage(to: Message("peer-1"), .dispatch)
        for id in ["a", "b"] {
            message.append(id)
            message.append("echo")
            message.append("[]")
            message.append(DispatchMeta(attempt: 1, timeoutMilliseconds: 5))
        }
        let envelope = try Envelope(frames: message.frames, fromRouter: true)
        #expect(envelope.routingID?.string == "peer-1")
        #expect(envelope.command == .dispatch)
        #expect(envelope.groups.map { $0.first!.string } == ["a", "b"])
    }
}
