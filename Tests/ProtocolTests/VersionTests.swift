import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Two versions served (PROTOCOL.md §13): tags, per-version commands, messages written in either
/// version, the version-3 dispatch meta, HELLO, and the words a receiver does not know.
@Suite("Protocol versions")
struct VersionTests {
    @Test("CVY3 is current; CVY3 and CVY2 are supported, newest first")
    func constants() {
        #expect(ProtocolTag.current == cvy3)
        #expect(ProtocolTag.currentText == "CVY3")
        #expect(ProtocolTag.supported == [cvy3, cvy2])
        #expect(ProtocolVersion.current == .v3)
        #expect(ProtocolVersion.supported == [.v3, .v2])
        #expect(ProtocolVersion.v2.tag == cvy2 && ProtocolVersion.v3.tagText == "CVY3")
    }

    @Test("The envelope takes both tags and says which one a message came with")
    func envelopeVersion() throws {
        let group = packed([bytes("job-1"), bytes("echo"), [], bytes("1")])
        #expect(try parse([cvy3, [0x01], group]).version == .v3)
        #expect(try parse([cvy2, [0x01], group]).version == .v2)
        #expect(try parse([bytes("peer"), cvy2, [0x04]], fromRouter: true).version == .v2)
    }

    @Test("Any other version still gets the clear error, now naming both versions spoken")
    func otherVersions() {
        for tag in ["CVY1", "CVY4", "CVY9", "CVY10"] {
            let error = parseError([bytes(tag), [0x04]])
            #expect(error == .unsupportedVersion(tag))
            #expect(error?.description == #"unsupported protocol "\#(tag)": this peer speaks "CVY3" and "CVY2""#)
        }
    }

    @Test("HELLO is a version-3 command: under CVY2 it is an unknown command, as a version-2 broker says")
    func helloOnlyInVersion3() throws {
        let body = bytes(#"{"role":"producer","versions":[3]}"#)
        let envelope = try parse([cvy3, [0x08], body])
        #expect(envelope.command == .hello)
        #expect(envelope[0].bytes == body)
        #expect(parseError([cvy2, [0x08], body]) == .unknownCommand("0x8"))
        #expect(parseError([cvy3, [0x08]]) == .malformed("HELLO takes 1 frame after the command; got 0"))
        #expect(Command.hello.since == .v3 && Command.submit.since == .v2)
    }

    @Test("An unknown command byte is named in the error, in either version")
    func unknownCommands() {
        #expect(parseError([cvy3, [0x7E]]) == .unknownCommand("0x7e"))
        #expect(parseError([cvy3, [0x26], []]) == .unknownCommand("0x26"))
        #expect(parseError([cvy2, [0x25], []]) == .unknownCommand("0x25"), "REVOKE is version 3 only")
        // RENEW is version 3 only: unknown to a version-2 peer.
        #expect(parseError([cvy2, [0x24], []]) == .unknownCommand("0x24"))
        #expect(parseError([cvy2, [0x09]]) == .unknownCommand("0x9"), "PURGE is version 3 only")
        #expect(parseError([cvy2, [0x0A], []]) == .unknownCommand("0xa"), "READ is version 3 only")
        #expect(parseError([cvy2, [0x0B], []]) == .unknownCommand("0xb"), "TASKS is version 3 only")
        #expect(parseError([cvy2, [0x0C], [], []]) == .unknownCommand("0xc"), "PAUSE is version 3 only")
        #expect(parseError([cvy2, [0x0D], [], [], []]) == .unknownCommand("0xd"), "SCHEDULE is version 3 only")
        #expect(parseError([cvy3, [0x0F]]) == .unknownCommand("0xf"))
    }

    @Test("The version to answer in: the message's own when spoken, else the current one")
    func replyVersion() {
        func version(_ frames: [[UInt8]], router: Bool = true) -> ProtocolVersion {
            ProtocolVersion.reply(to: Multipart(frames), fromRouter: router)
        }
        #expect(version([bytes("p"), cvy2, [0x7E]]) == .v2)
        #expect(version([bytes("p"), cvy3, [0x01]]) == .v3)
        #expect(version([bytes("p"), bytes("CVY1"), [0x01]]) == .v3)
        #expect(version([bytes("p")]) == .v3)
        #expect(version([cvy2, [0x05]], router: false) == .v2)
    }

    @Test("A message is written in the version asked for: the tag, and its options and meta fields")
    func outgoingVersions() throws {
        let options = TaskOptions(timeoutMilliseconds: 5000)
        for version in ProtocolVersion.allCases {
            var submit = OutgoingMessage(.submit, version: version)
            submit.append("job-1")
            submit.append("echo")
            submit.append(options)
            submit.append(#"{"n":1}"#)
            let expected: [UInt8] = version == .v2 ? options.encoded(for: .v2) : tlv(0x0001, be32(5000))
            #expect(submit.frames.map(\.bytes) == [version.tag, [0x01], packed([bytes("job-1"), bytes("echo"), expected, bytes(#"{"n":1}"#)])])
            let envelope = try Envelope(frames: submit.frames, fromRouter: false)
            #expect(envelope.version == version)
            #expect(try envelope[2].withUnsafeBytes { try TaskOptions(field: $0, version: envelope.version) } == options)

            var dispatch = OutgoingMessage(to: [0x70], .dispatch, version: version)
            let meta = DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750)
            dispatch.append("job-1")
            dispatch.append("echo")
            dispatch.append("{}")
            dispatch.append(meta)
            let parsed = try Envelope(frames: dispatch.frames, fromRouter: true)
            #expect(parsed.version == version)
            #expect(try parsed[3].withUnsafeBytes { try DispatchMeta(field: $0, version: parsed.version) } == meta)
        }
        #expect(OutgoingMessage(.heartbeat).frames.map(\.bytes) == [cvy3, [0x05]])
        #expect(OutgoingMessage(.heartbeat, version: .v2).frames.map(\.bytes) == [cvy2, [0x05]])
    }

    @Test("An ERROR tagged CVY2 tells a CVY3 client that the broker speaks only version 2")
    func versionRefusal() throws {
        let refusal = try parse([cvy2, [0x1F], bytes(#"unsupported protocol "CVY3": this peer speaks "CVY2""#)])
        #expect(refusal.refusesVersion(.v3))
        #expect(!refusal.refusesVersion(.v2))
        #expect(try !parse([cvy3, [0x1F], bytes("unknown command 0x7e")]).refusesVersion(.v3))
        #expect(try !parse([cvy2, [0x05]]).refusesVersion(.v3))
    }

    // MARK: Dispatch meta

    static let metaFixture: [UInt8] = [
        0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, // 0x0001 attempt 2
        0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0xE9, 0x66, // 0x0002 timeout_ms 59750
    ]

    func meta(_ bytes: [UInt8]) throws(ProtocolError) -> DispatchMeta {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ProtocolError) -> DispatchMeta in try DispatchMeta(field: buffer, version: .v3) } }.get()
    }

    func metaError(_ bytes: [UInt8]) -> ProtocolError? {
        do { _ = try meta(bytes); return nil } catch { return error }
    }

    @Test("Version-3 dispatch meta: attempt and timeout_ms as tagged fields (golden bytes)")
    func metaGolden() throws {
        let value = DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750)
        #expect(value.encoded(for: .v3) == Self.metaFixture)
        #expect(value.encoded(for: .v2) == [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0xE9, 0x66])
        #expect(try meta(Self.metaFixture) == value)
        #expect(DispatchMeta.version3Size == 16 && DispatchMeta.version2Size == 8)
    }

    @Test("Dispatch meta follows the same rules: unknown plain fields skipped, critical ones refused, last wins")
    func metaRules() throws {
        let lease = tlv(MetaTag.lease, [UInt8](repeating: 0, count: 8))
        #expect(try meta(lease + Self.metaFixture + tlv(0x0003, [UInt8](repeating: 0, count: 8))) == DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750))
        #expect(try meta(Self.metaFixture + tlv(0x0001, be32(3))).attempt == 3)
        #expect(metaError(Self.metaFixture + tlv(0x800B, be32(1)))
                    == .unsupportedField("dispatch meta field: field 0x800b (lease) is marked critical and this peer does not support it"))
        #expect(metaError(Array(Self.metaFixture.prefix(8))) == .malformed("dispatch meta field: timeout_ms (0x0002) is missing"))
        #expect(metaError([]) == .malformed("dispatch meta field: attempt (0x0001) is missing"))
        #expect(metaError(Array(Self.metaFixture.prefix(11))) == .malformed("dispatch meta field: 3 bytes left at offset 8, too few for a field header (4)"))
    }

    @Test("5,000 random meta fields round-trip, and garbage never crashes the decoder")
    func metaRandom() throws {
        var random = SeededGenerator(seed: 42)
        for _ in 0..<5_000 {
            let value = DispatchMeta(attempt: UInt32(truncatingIfNeeded: random.next()), timeoutMilliseconds: UInt32(truncatingIfNeeded: random.next()))
            #expect(try meta(value.encoded(for: .v3)) == value)
            var noise = value.encoded(for: .v3) + (0..<Int(random.next() % 12)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            noise[Int(random.next() % UInt64(noise.count))] ^= 0xFF
            _ = metaError(noise)
        }
    }

    // MARK: HELLO

    @Test("A HELLO body is JSON with sorted keys (golden bytes), and the whole message is three frames")
    func helloGolden() {
        let producer = Hello(versions: [2, 3], role: .producer, software: "conveyor-swift")
        #expect(producer.json == #"{"capabilities":[],"role":"producer","software":"conveyor-swift","versions":[2,3]}"#)
        let broker = Hello(versions: [2, 3], role: .broker, capabilities: [Capability(rawValue: "x_demo")],
                           software: "conveyor", heartbeatMilliseconds: 1000,
                           limits: HelloLimits(maxMessageSize: 16_777_216, maxGroups: 65_536, maxQueued: 1_000_000))
        #expect(broker.json == #"{"capabilities":["x_demo"],"heartbeat_ms":1000,"limits":{"max_groups":65536,"max_message_size":16777216,"max_queued":1000000},"role":"broker","software":"conveyor","versions":[2,3]}"#)
        var message = OutgoingMessage(.hello)
        message.append(producer.json)
        #expect(message.frames.map(\.bytes) == [cvy3, [0x08], bytes(producer.json)])
    }

    @Test("HELLO decodes with only versions and role; unknown keys, roles and capabilities are accepted")
    func helloDecodes() throws {
        let minimal = try JSONDecoder().decode(Hello.self, from: Data(#"{"versions":[3],"role":"producer"}"#.utf8))
        #expect(minimal == Hello(versions: [3], role: .producer))
        let future = try JSONDecoder().decode(Hello.self, from: Data(#"{"versions":[3,4],"role":"gateway","capabilities":["progress","teleport"],"colour":"blue","limits":{"max_groups":10,"max_parallel":3}}"#.utf8))
        #expect(future.role.rawValue == "gateway")
        #expect(future.capabilities == [.progress, Capability(rawValue: "teleport")])
        #expect(future.limits == HelloLimits(maxGroups: 10))
        let broker = Hello(versions: [2, 3], role: .broker)
        #expect(future.commonVersion(with: broker) == .v3)
        #expect(Hello(versions: [2], role: .consumer).commonVersion(with: broker) == .v2)
        #expect(Hello(versions: [4], role: .consumer).commonVersion(with: broker) == nil)
        // Round trip through the hand-written JSON.
        let written = Hello(versions: [3], role: .consumer, capabilities: [.leases], software: "a \"quoted\" name", heartbeatMilliseconds: 250)
        #expect(try JSONDecoder().decode(Hello.self, from: Data(written.json.utf8)) == written)
    }

    @Test("A HELLO without versions or role, with no versions, or not an object does not decode", arguments: [
        #"{"role":"producer"}"#, #"{"versions":[3]}"#, #"{"versions":[],"role":"producer"}"#, #"[3]"#, #"{"versions":"3","role":"x"}"#, "",
    ])
    func helloRejects(text: String) {
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Hello.self, from: Data(text.utf8)) }
    }

    // MARK: Words a receiver does not know

    @Test("Unknown states, statuses and outcomes map to unrecognized, never to a known word")
    func unknownWords() {
        #expect(TaskState(wire: "waiting_for_group") == .unrecognized)
        #expect(TaskState(wire: "scheduled") == .scheduled && TaskState(wire: "scheduled").isHeld)
        #expect(TaskState(wire: "reserved").isHeld && !TaskState(wire: "reserved").isFinished)
        #expect(TaskState(wire: "done") == .done && TaskState(wire: "done").isFinished)
        #expect(!TaskState(wire: "unknown").isHeld)
        #expect(TaskStatus(wire: "expired") == .unrecognized)
        #expect(TaskStatus(wire: "OK") == .unrecognized)
        #expect(TaskStatus(wire: "ok") == .ok && TaskStatus(wire: "timeout") == .timeout)
        for word in ["ok", "error", "timeout", "cancelled", "rejected", "expired", "", "oK", "unrecognized"] {
            #expect(Array(word.utf8).withUnsafeBytes { TaskStatus(bytes: $0) } == TaskStatus(wire: word), "\(word)")
        }
        #expect(CancelOutcome(wire: "cancelling") == .unrecognized)
        #expect(CancelOutcome(wire: "running") == .running)
        #expect(!TaskStatus.sentByBroker.contains(.unrecognized) && !TaskStatus.sentByBroker.contains(.rejected))
    }

    @Test("10,000 random messages never crash the envelope, under either tag")
    func randomMessages() {
        var random = SeededGenerator(seed: 7)
        let commands = Command.allCases.map(\.rawValue) + [0x00, 0x09, 0x7E, 0xFF]
        for _ in 0..<10_000 {
            var frames: [[UInt8]] = [random.next() % 2 == 0 ? cvy2 : cvy3, [commands[Int(random.next() % UInt64(commands.count))]]]
            for _ in 0..<Int(random.next() % 4) {
                frames.append((0..<Int(random.next() % 24)).map { _ in UInt8(truncatingIfNeeded: random.next() % 8) })
            }
            _ = parseError(frames)
        }
    }
}
