import ConveyorProtocol
import Testing
import ZeroMQ

@Suite("Envelope parsing")
struct EnvelopeTests {
    static let options = TaskOptions(timeoutMilliseconds: 5000).encoded(for: .v2)

    static func submitGroup(_ id: String) -> [[UInt8]] {
        [bytes(id), bytes("echo"), options, bytes(#"{"id":"\#(id)"}"#)]
    }

    @Test("A SUBMIT with one group parses into its command and four body fields")
    func submitWithOneGroup() throws {
        let envelope = try parse([cvy2, [0x01], packed(Self.submitGroup("job-1"))])
        #expect(envelope.command == .submit)
        #expect(envelope.routingID == nil)
        #expect(envelope.body.count == 4)
        #expect(envelope[0].string == "job-1")
        #expect(envelope[1].string == "echo")
        #expect(envelope[2].bytes == Self.options)
        #expect(envelope[3].string == #"{"id":"job-1"}"#)
        #expect(envelope.groups.count == 1)
    }

    @Test("A SUBMIT with three groups splits into three groups of four, in order")
    func submitWithThreeGroups() throws {
        let ids = ["a", "b", "c"]
        let envelope = try parse([cvy2, [0x01], packed(ids.flatMap(Self.submitGroup))])
        #expect(envelope.body.count == 12)
        let groups = envelope.groups
        #expect(groups.count == 3)
        for (group, id) in zip(groups, ids) {
            #expect(group.count == 4)
            #expect(group.map(\.bytes) == Self.submitGroup(id))
        }
    }

    @Test("From a ROUTER, frame 0 is the routing id and the tag follows it")
    func fromRouterTakesTheRoutingID() throws {
        let routingID: [UInt8] = [0x00, 0x80, 0x00, 0x41, 0xA7]
        let envelope = try parse([routingID, cvy2, [0x01], packed(Self.submitGroup("job-1"))], fromRouter: true)
        #expect(envelope.routingID?.bytes == routingID)
        #expect(envelope.command == .submit)
        #expect(envelope[0].string == "job-1")
    }

    @Test("Not from a ROUTER, a routing id in front is taken for a stranger's first frame")
    func routingIDWithoutFromRouterIsNotConveyor() {
        #expect(parseError([bytes("peer"), cvy2, [0x01], packed(Self.submitGroup("x"))]) == .notConveyor)
    }

    @Test("From a ROUTER, a message without a routing id reads the tag as the id and is not Conveyor")
    func fromRouterWithoutRoutingID() {
        #expect(parseError([cvy2, [0x04]], fromRouter: true) == .notConveyor)
    }

    @Test("Another version's tag (CVY9, or the unpacked CVY1) is an unsupported version naming the tag")
    func otherVersionIsUnsupported() {
        let error = parseError([bytes("CVY9"), [0x01]] + Self.submitGroup("x"))
        #expect(error == .unsupportedVersion("CVY9"))
        #expect(error?.description == #"unsupported protocol "CVY9": this peer speaks "CVY3" and "CVY2""#)
        #expect(parseError([bytes("peer"), bytes("CVY1"), [0x04]], fromRouter: true) == .unsupportedVersion("CVY1"))
    }

    @Test("A tag starting with CVY but longer than 16 bytes is not Conveyor")
    func longCVYTagIsNotConveyor() {
        #expect(parseError([bytes("CVY1234567890123"), [0x04]]) == .unsupportedVersion("CVY1234567890123"))
        #expect(parseError([bytes("CVY12345678901234"), [0x04]]) == .notConveyor)
    }

    @Test("A first frame that is not a Conveyor tag is a stranger's message", arguments: [
        "", "CV", "cvy2", "HTTP", "GET / HTTP/1.1", "xCVY2",
    ])
    func strangerFirstFrame(tag: String) {
        let error = parseError([bytes(tag), [0x04]])
        #expect(error == .notConveyor)
        #expect(error?.description.contains("CVY3") == true)
    }

    @Test("A REQ socket's empty delimiter in front of the tag makes the message a stranger's")
    func reqDelimiterIsNotConveyor() {
        #expect(parseError([[], cvy2, [0x04]]) == .notConveyor)
    }

    @Test("An empty frame list is rejected: not Conveyor from a DEALER, malformed from a ROUTER")
    func emptyFrameList() {
        #expect(parseError([]) == .notConveyor)
        let routed = parseError([], fromRouter: true)
        #expect(routed == .malformed("no frames"))
        #expect(parseError([bytes("peer")], fromRouter: true) == .notConveyor)
    }

    @Test("A tag with no command frame after it is an unknown command saying the frame is missing")
    func missingCommandFrame() {
        let error = parseError([cvy2])
        #expect(error == .unknownCommand("(missing command frame)"))
        #expect(error?.description == "unknown command (missing command frame)")
        #expect(parseError([bytes("peer"), cvy2], fromRouter: true) == .unknownCommand("(missing command frame)"))
    }

    @Test("A command frame of 2 bytes, or of none, is an unknown command giving its length")
    func commandFrameOfWrongLength() {
        let error = parseError([cvy2, [0x01, 0x01], packed(Self.submitGroup("x"))])
        #expect(error == .unknownCommand("(command frame has 2 bytes; expected 1)"))
        #expect(error?.description == "unknown command (command frame has 2 bytes; expected 1)")
        #expect(parseError([cvy2, []]) == .unknownCommand("(command frame has 0 bytes; expected 1)"))
    }

    @Test("An unknown command byte is named in lowercase hex without leading zeros", arguments: [
        (UInt8(0x7E), "0x7e"), (0x00, "0x0"), (0x08, "0x8"), (0x10, "0x10"), (0x18, "0x18"), (0x24, "0x24"), (0xFF, "0xff"),
    ])
    func unknownCommandByte(byte: UInt8, shown: String) {
        let error = parseError([cvy2, [byte]])
        #expect(error == .unknownCommand(shown))
        #expect(error?.description == "unknown command \(shown)")
    }

    @Test("A SUBMIT with 3 packed fields is malformed and the error counts the fields")
    func submitWithThreeFieldsIsMalformed() {
        let error = parseError([cvy2, [0x01], packed(Array(Self.submitGroup("x").prefix(3)))])
        #expect(error == .malformed("SUBMIT needs one or more groups of 4 fields; got 3 fields"))
        #expect(error?.description == "malformed message: SUBMIT needs one or more groups of 4 fields; got 3 fields")
    }

    @Test("A group command needs at least one whole group", arguments: [
        (Command.submit, 0), (.submit, 5), (.submit, 7), (.result, 0), (.result, 6), (.dispatch, 3),
        (.done, 0), (.done, 9), (.rejected, 0), (.rejected, 3), (.accepted, 0),
    ])
    func groupCommandWithPartialGroup(command: Command, fields: Int) {
        let error = parseError([cvy2, [command.rawValue], packed(Array(repeating: bytes("f"), count: fields))])
        #expect(error == .malformed("\(command) needs one or more groups of \(command.groupSize!) fields; got \(fields) fields"))
    }

    @Test("A group command takes exactly one packed frame: the unpacked version-1 layout is malformed")
    func groupCommandNeedsOnePackedFrame() {
        #expect(parseError([cvy2, [0x01]] + Self.submitGroup("x"))
                    == .malformed("SUBMIT takes one packed frame after the command; got 4 frames"))
        #expect(parseError([cvy2, [0x11]]) == .malformed("ACCEPTED takes one packed frame after the command; got 0 frames"))
        #expect(parseError([cvy2, [0x11], packed([bytes("a")]), packed([bytes("b")])])
                    == .malformed("ACCEPTED takes one packed frame after the command; got 2 frames"))
    }

    @Test("A packed frame whose length prefix is cut short, or runs past the end, is malformed")
    func truncatedPackedFrames() {
        #expect(parseError([cvy2, [0x11], [0, 0, 1]]) == .malformed("ACCEPTED field 0 has a truncated length (3 bytes left)"))
        #expect(parseError([cvy2, [0x11], packed([bytes("ok")]) + [0]])
                    == .malformed("ACCEPTED field 1 has a truncated length (1 bytes left)"))
        #expect(parseError([cvy2, [0x11], [0, 0, 0, 5] + bytes("abc")]) == .malformed("ACCEPTED field 0 claims 5 bytes; 3 are left"))
        #expect(parseError([cvy2, [0x11], [0xFF, 0xFF, 0xFF, 0xFF]]) == .malformed("ACCEPTED field 0 claims 4294967295 bytes; 0 are left"))
    }

    @Test("More than 65,536 groups in one message is malformed; exactly 65,536 parses")
    func tooManyGroups() throws {
        let empty: [UInt8] = [0, 0, 0, 0]
        let most = try parse([cvy2, [0x11], Array([[UInt8]](repeating: empty, count: Envelope.maxGroups).joined())])
        #expect(most.groups.count == Envelope.maxGroups)
        let error = parseError([cvy2, [0x11], Array([[UInt8]](repeating: empty, count: Envelope.maxGroups + 1).joined())])
        #expect(error == .malformed("ACCEPTED carries more than 65536 groups"))
    }

    @Test("Fields are views of the received bytes: empty, binary and large fields come out intact")
    func fieldContents() throws {
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let fields: [[UInt8]] = [[], [0x00, 0xFF], big, bytes("last")]
        let envelope = try parse([cvy2, [0x13], packed(fields)])
        #expect(envelope.body.map(\.bytes) == fields)
    }

    @Test("A CANCEL with no frames is malformed and the error says it takes one")
    func cancelWithoutFramesIsMalformed() {
        let error = parseError([cvy2, [0x02]])
        #expect(error == .malformed("CANCEL takes 1 frame after the command; got 0"))
        #expect(error?.description == "malformed message: CANCEL takes 1 frame after the command; got 0")
    }

    /// The body frame counts of the commands without groups, from PROTOCOL.md §3 and Envelope.swift.
    static let fixedCounts: [(Command, Int)] = [
        (.hello, 1), (.cancel, 1), (.status, 1), (.stats, 0), (.heartbeat, 0), (.disconnect, 0), (.deadLetters, 2),
        (.cancelReply, 2), (.statusReply, 5), (.statsReply, 1), (.deadLettersReply, 1), (.error, 1), (.ready, 1),
        (.purge, 1), (.purgeReply, 1), (.read, 1), (.resume, 1), (.notice, 1), (.tasks, 1), (.tasksReply, 1),
        (.pause, 2), (.pauseReply, 1), (.schedule, 3), (.scheduleReply, 1), (.limit, 1), (.limitReply, 1),
    ]

    @Test("Every command is either a group command or has a fixed body count listed here")
    func everyCommandHasAShape() {
        let fixed = Set(Self.fixedCounts.map(\.0))
        for command in Command.allCases {
            #expect((command.groupSize != nil) != fixed.contains(command), "\(command)")
        }
    }

    @Test("Commands with a fixed body parse with exactly their count and are malformed with one more or one less",
          arguments: fixedCounts)
    func fixedBodyCounts(command: Command, count: Int) throws {
        let header = [command.since == .v3 ? cvy3 : cvy2, [command.rawValue]]
        let envelope = try parse(header + Array(repeating: [], count: count))
        #expect(envelope.command == command)
        #expect(envelope.body.count == count)
        #expect(envelope.groups.count == 1)
        #expect(envelope.groups[0].count == count)
        let plural = count == 1 ? "frame" : "frames"
        #expect(parseError(header + Array(repeating: [], count: count + 1))
                    == .malformed("\(command) takes \(count) \(plural) after the command; got \(count + 1)"))
        if count > 0 {
            #expect(parseError(header + Array(repeating: [], count: count - 1))
                        == .malformed("\(command) takes \(count) \(plural) after the command; got \(count - 1)"))
        }
    }

    @Test("Group commands accept any whole number of groups, and groups keep their frames in order", arguments: [
        Command.submit, .result, .dispatch, .done, .rejected, .accepted,
    ])
    func groupsSplitEvenly(command: Command) throws {
        let size = command.groupSize!
        for groupCount in [1, 2, 5] {
            let fields = (0..<(size * groupCount)).map { bytes("f\($0)") }
            let envelope = try parse([bytes("peer"), cvy2, [command.rawValue], packed(fields)], fromRouter: true)
            let groups = envelope.groups
            #expect(groups.count == groupCount)
            for (index, group) in groups.enumerated() {
                #expect(group.map(\.string) == (0..<size).map { "f\(index * size + $0)" })
            }
        }
    }

    @Test("Empty body frames are legal: an empty options frame in SUBMIT and empty STATUS_REPLY frames")
    func emptyBodyFramesAreLegal() throws {
        let submit = try parse([cvy2, [0x01], packed([bytes("id"), bytes("echo"), [], bytes("1")])])
        #expect(submit[2].isEmpty)
        let reply = try parse([cvy2, [0x15], bytes("id"), bytes("queued"), [], [], []])
        #expect(reply.command == .statusReply)
        #expect(reply[4].isEmpty)
    }

    @Test("ProtocolError descriptions say what was wrong")
    func descriptions() {
        #expect(ProtocolError.notConveyor.description == #"not a Conveyor message: frame 0 must be the protocol tag "CVY3""#)
        #expect(ProtocolError.unsupportedVersion("CVY7").description.contains("CVY7"))
        #expect(ProtocolError.unknownCommand("0x7e").description == "unknown command 0x7e")
        #expect(ProtocolError.malformed("no frames").description == "malformed message: no frames")
    }
}
