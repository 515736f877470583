import ConveyorProtocol
import Testing

/// `not_before` (0x0005), `unique_key` (0x0006) and `unique_ttl_ms` (0x000D): golden bytes (the
/// ones of PROTOCOL.md §6.1 and the Python client's tests), round trips, and what is refused.
@Suite("Delayed and unique task options")
struct ScheduledOptionsTests {
    /// timeout 5 s, not_before 1800000000000 ms, unique key "daily-report" kept 60 s.
    static let options = TaskOptions(timeoutMilliseconds: 5000, notBefore: 1_800_000_000_000, uniqueKey: "daily-report",
                                     uniqueTTLMilliseconds: 60_000)
    static let golden: [UInt8] = [0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x13, 0x88,
                                  0x80, 0x05, 0x00, 0x08, 0x00, 0x00, 0x01, 0xA3, 0x18, 0x5C, 0x50, 0x00,
                                  0x80, 0x06, 0x00, 0x0C] + Array("daily-report".utf8)
        + [0x80, 0x0D, 0x00, 0x04, 0x00, 0x00, 0xEA, 0x60]

    func decode(_ bytes: [UInt8]) throws(ProtocolError) -> TaskOptions {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ProtocolError) -> TaskOptions in try TaskOptions(field: buffer, version: .v3) } }.get()
    }

    func decodeError(_ bytes: [UInt8]) -> ProtocolError? {
        do { _ = try decode(bytes); return nil } catch { return error }
    }

    @Test("The three options are critical fields in number order, and read back (plain too)")
    func goldenBytes() throws {
        #expect(Self.options.encoded(for: .v3) == Self.golden)
        #expect(Self.options.encodedCount(for: .v3) == Self.golden.count)
        #expect(try decode(Self.golden) == Self.options)
        // Plain (the critical bit clear), every version-3.2 broker reads them all the same.
        var plain = Self.golden
        for index in [8, 20, 36] { plain[index] &= 0x7F }
        #expect(try decode(plain) == Self.options)
        #expect(Self.options.problem == nil)
    }

    @Test("Version 2 cannot carry them: its 16 bytes stay the other options'")
    func version2() {
        #expect(Self.options.encoded(for: .v2) == TaskOptions(timeoutMilliseconds: 5000).encoded(for: .v2))
    }

    @Test("A not_before of the wrong size, a unique key that is not visible ASCII, and a TTL without a key")
    func refusals() {
        #expect(decodeError([0x80, 0x05, 0x00, 0x04, 0, 0, 0, 1]) == .malformed("options field: not_before (0x8005) has 4 bytes; expected 8"))
        #expect(decodeError([0x80, 0x06, 0x00, 0x03, 0x61, 0x20, 0x62]) == .malformed("options field: unique_key (0x8006) must be 1-255 bytes of visible ASCII"))
        #expect(decodeError([0x80, 0x06, 0x00, 0x00]) != nil)
        #expect(decodeError([0x80, 0x0D, 0x00, 0x02, 0, 1]) == .malformed("options field: unique_ttl_ms (0x800d) has 2 bytes; expected 4"))
        #expect(TaskOptions(uniqueKey: "two words").problem?.contains("visible ASCII") == true)
        #expect(TaskOptions(uniqueTTLMilliseconds: 5).problem?.contains("without a unique_key") == true)
    }

    @Test("The largest not_before round-trips; 0 (the epoch) is a time in the past, ready at once")
    func extremes() throws {
        for value: UInt64 in [0, 1, UInt64.max] {
            let options = TaskOptions(notBefore: value)
            #expect(try decode(options.encoded(for: .v3)).notBefore == value)
        }
    }
}
