import ConveyorProtocol
import Testing

/// The trace context a task carries (PROTOCOL.md §6.1 `traceparent` 0x0009 and `tracestate`
/// 0x000A, §6.2 the same in the dispatch meta): golden bytes, what is valid, and what a receiver
/// does with what is not.
@Suite("Trace context (traceparent, tracestate)")
struct TraceContextTests {
    /// W3C Trace Context's own example.
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

    func decode(_ bytes: [UInt8]) throws(ProtocolError) -> TaskOptions {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ProtocolError) -> TaskOptions in try TaskOptions(field: buffer, version: .v3) } }.get()
    }

    func decodeError(_ bytes: [UInt8]) -> ProtocolError? {
        do { _ = try decode(bytes); return nil } catch { return error }
    }

    func meta(_ bytes: [UInt8]) throws(ProtocolError) -> DispatchMeta {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ProtocolError) -> DispatchMeta in try DispatchMeta(field: buffer, version: .v3) } }.get()
    }

    @Test("traceparent and tracestate are plain text fields 0x0009 and 0x000A, in number order (golden bytes)")
    func goldenOptions() throws {
        // PROTOCOL.md §6.1's example: timeout 5 s plus a traceparent.
        let options = TaskOptions(timeoutMilliseconds: 5000, traceparent: Self.parent)
        let golden: [UInt8] = [0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x13, 0x88, 0x00, 0x09, 0x00, 0x37] + bytes(Self.parent)
        #expect(options.encoded(for: .v3) == golden)
        #expect(options.encodedCount(for: .v3) == 67)
        #expect(try decode(golden) == options)

        let both = TaskOptions(requireConsumer: true, traceparent: Self.parent, tracestate: Self.state)
        let bothGolden = [0x00, 0x09, 0x00, 0x37] + bytes(Self.parent) + [0x00, 0x0A, 0x00, 0x27] + bytes(Self.state)
            + [0x80, 0x0B, 0x00, 0x00]
        #expect(both.encoded(for: .v3) == bothGolden)
        #expect(both.encodedCount(for: .v3) == bothGolden.count)
        #expect(try decode(bothGolden) == both)
        #expect(both.problem == nil)
    }

    @Test("Without a trace context nothing is written: the defaults stay an empty field")
    func absentCostsNothing() {
        #expect(TaskOptions().encoded(for: .v3).isEmpty)
        #expect(TaskOptions().problem == nil)
        #expect(DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750).encodedCount(for: .v3) == DispatchMeta.version3Size)
    }

    @Test("Version 2 cannot carry a trace context: its 16 bytes are unchanged")
    func version2() {
        let options = TaskOptions(priority: 3, traceparent: Self.parent)
        #expect(options.encoded(for: .v2) == TaskOptions(priority: 3).encoded(for: .v2))
        #expect(TaskOptions(traceparent: Self.parent).encoded(for: .v2).isEmpty)
        #expect(DispatchMeta(attempt: 1, timeoutMilliseconds: 9, traceparent: Self.parent).encoded(for: .v2).count == 8)
    }

    @Test("The dispatch meta carries them after attempt and timeout_ms (golden bytes)")
    func goldenMeta() throws {
        let value = DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750, traceparent: Self.parent, tracestate: Self.state)
        let golden: [UInt8] = [0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0xE9, 0x66]
            + [0x00, 0x09, 0x00, 0x37] + bytes(Self.parent) + [0x00, 0x0A, 0x00, 0x27] + bytes(Self.state)
        #expect(value.encoded(for: .v3) == golden)
        #expect(value.encodedCount(for: .v3) == golden.count)
        #expect(try meta(golden) == value)
        // A consumer drops what is not valid, and a tracestate without its traceparent.
        let plain = Array(golden.prefix(16))
        #expect(try meta(plain + tlv(MetaTag.traceParent, bytes("00-zz"))) == DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750))
        #expect(try meta(plain + tlv(MetaTag.traceState, bytes(Self.state))).tracestate == nil)
    }

    @Test("Valid traceparents: version 00 of 55 characters, and a later version with more after a '-'", arguments: [
        parent,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-what-the-future-holds",
    ])
    func validTraceparent(value: String) {
        #expect(TraceContextFormat.problem(traceparent: value) == nil)
        #expect(TaskOptions(traceparent: value).problem == nil)
    }

    @Test("Invalid traceparents are refused with the reason", arguments: [
        ("", "it has 0 characters; version 00 has 55"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "it has 52 characters; version 00 has 55"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "character 5 is not a lowercase hex digit"),
        ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "character 3 is not '-'"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", "character 36 is not '-'"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", "character 55 is not a lowercase hex digit"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff is invalid"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "its trace id is all zeros"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "its parent id is all zeros"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", "it has 56 characters; version 00 has 55"),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", "character 56 is not '-'"),
    ])
    func invalidTraceparent(value: String, reason: String) {
        let problem = TraceContextFormat.problem(traceparent: value)
        #expect(problem?.hasPrefix(reason) == true, "\(String(describing: problem))")
    }

    @Test("The error for a task names the option, the value and what to do")
    func problemNamesTheOption() {
        let problem = TaskOptions(traceparent: "00-abc").problem
        #expect(problem == "traceparent '00-abc' is not a W3C traceparent: it has 6 characters; version 00 has 55: expected version-traceid-parentid-flags in lowercase hex (2, 32, 16 and 2 digits), e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01; pass the incoming request's traceparent header unchanged, or none")
        #expect(TaskOptions(tracestate: Self.state).problem?.hasPrefix("tracestate is given without a traceparent") == true)
        #expect(TaskOptions(traceparent: Self.parent, tracestate: "").problem?.hasPrefix("tracestate '' is not a W3C tracestate: it is empty") == true)
        let long = String(repeating: "a", count: 513)
        #expect(TaskOptions(traceparent: Self.parent, tracestate: long).problem?.contains("it has 513 bytes; at most 512 are carried") == true)
        #expect(TaskOptions(traceparent: Self.parent, tracestate: "a=1\n").problem?.contains("byte 4 (0xa) is not printable ASCII") == true)
        #expect(TaskOptions(traceparent: Self.parent, tracestate: "a=1, b=2\tc").problem == nil, "spaces and tabs are W3C's OWS")
        #expect(TaskOptions(traceparent: String(repeating: "x", count: 300)).problem?.contains("…'") == true, "a long value is cut")
    }

    @Test("The broker drops a plain trace field that is not valid and keeps the task; sent critical, it is malformed")
    func receiverRules() throws {
        let timeout = tlv(0x0001, be32(5000))
        #expect(try decode(timeout + tlv(0x0009, bytes("00-nope"))) == TaskOptions(timeoutMilliseconds: 5000))
        #expect(try decode(tlv(0x0009, bytes(Self.parent)) + tlv(0x000A, [0x01])) == TaskOptions(traceparent: Self.parent),
                "an invalid tracestate is dropped, its traceparent kept")
        #expect(try decode(tlv(0x000A, bytes(Self.state))) == TaskOptions(), "a tracestate without a traceparent is dropped")
        #expect(try decode(tlv(0x000A, bytes(Self.state)) + tlv(0x0009, bytes("00-nope"))) == TaskOptions(),
                "no valid traceparent: its tracestate goes too")
        #expect(try decode(tlv(0x8009, bytes(Self.parent))) == TaskOptions(traceparent: Self.parent), "known, so critical is fine")
        #expect(decodeError(tlv(0x8009, bytes("00-nope")))
                    == .malformed("options field: traceparent (0x8009) is not valid: it has 7 characters; version 00 has 55: expected version-traceid-parentid-flags in lowercase hex (2, 32, 16 and 2 digits), e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(decodeError(tlv(0x0009, bytes(Self.parent)) + tlv(0x800A, []))
                    == .malformed("options field: tracestate (0x800a) is not valid: it is empty (leave it out instead)"))
        // The last occurrence wins, as for every option.
        let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        #expect(try decode(tlv(0x0009, bytes(Self.parent)) + tlv(0x0009, bytes(other))).traceparent == other)
    }

    @Test("The trace id is the 32 hex digits after the version")
    func traceID() {
        #expect(TraceContextFormat.traceID(ofTraceparent: Self.parent) == "4bf92f3577b34da6a3ce929d0e0e4736")
    }
}
