import ConveyorProtocol
import Testing

/// Golden bytes of the version-2 fixed-layout fields, still served to CVY2 peers: the 16-byte options
/// field of SUBMIT and the 8-byte meta field of DISPATCH. The expected arrays are written out by hand
/// from docs/PROTOCOL.md §13.2.
@Suite("Version-2 binary fields")
struct BinaryFrameTests {
    static let optionsFixture: [UInt8] = [
        0x00, 0x00, 0x75, 0x30, // timeout_ms 30000
        0xFF, 0xFF, 0xFF, 0xFE, // priority -2
        0x00, 0x00, 0x00, 0x03, // max_attempts 3
        0x00, 0x00, 0x01, 0xF4, // retry_backoff_ms 500
    ]

    func decodeOptions(_ frame: [UInt8]) throws -> TaskOptions {
        try frame.withUnsafeBytes { try TaskOptions(field: $0, version: .v2) }
    }

    func decodeMeta(_ frame: [UInt8]) throws -> DispatchMeta {
        try frame.withUnsafeBytes { try DispatchMeta(field: $0, version: .v2) }
    }

    @Test("TaskOptions encode as big-endian timeout u32, priority i32, attempts u32, backoff u32")
    func optionsEncodeToGoldenBytes() {
        let options = TaskOptions(timeoutMilliseconds: 30000, priority: -2, maxAttempts: 3, retryBackoffMilliseconds: 500)
        #expect(options.encoded(for: .v2) == Self.optionsFixture)
        #expect(TaskOptions.version2Size == 16)
    }

    @Test("The golden options bytes decode back to the same values")
    func optionsDecodeFromGoldenBytes() throws {
        let options = try decodeOptions(Self.optionsFixture)
        #expect(options.timeoutMilliseconds == 30000)
        #expect(options.priority == -2)
        #expect(options.maxAttempts == 3)
        #expect(options.retryBackoffMilliseconds == 500)
        #expect(options == TaskOptions(timeoutMilliseconds: 30000, priority: -2, maxAttempts: 3, retryBackoffMilliseconds: 500))
    }

    @Test("The version-2 worked example (PROTOCOL.md §13.2) encodes to its documented options frame")
    func optionsMatchTheWorkedExample() {
        let options = TaskOptions(timeoutMilliseconds: 5000, priority: 0, maxAttempts: 1, retryBackoffMilliseconds: 1000)
        #expect(options.encoded(for: .v2) == [0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xE8])
    }

    @Test("Extreme values survive the round trip: the largest u32s and the i32 extremes")
    func optionsExtremesRoundTrip() throws {
        for priority in [Int32.min, -1, 0, 1, Int32.max] {
            let options = TaskOptions(timeoutMilliseconds: .max, priority: priority, maxAttempts: .max, retryBackoffMilliseconds: .max)
            #expect(try decodeOptions(options.encoded(for: .v2)) == options)
        }
        #expect(TaskOptions(timeoutMilliseconds: .max, priority: .min, maxAttempts: 1, retryBackoffMilliseconds: 0).encoded(for: .v2)
                    == [0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00])
    }

    @Test("An empty options frame means the defaults: 300 s, priority 0, 1 attempt, 1000 ms backoff")
    func emptyOptionsFrameGivesDefaults() throws {
        let options = try decodeOptions([])
        #expect(options == .default)
        #expect(options.timeoutMilliseconds == 300_000)
        #expect(options.priority == 0)
        #expect(options.maxAttempts == 1)
        #expect(options.retryBackoffMilliseconds == 1000)
    }

    @Test("An options frame of 15 bytes is malformed and the error says how long it was")
    func fifteenByteOptionsFrameIsMalformed() {
        let error = #expect(throws: ProtocolError.self) { try decodeOptions(Array(Self.optionsFixture.prefix(15))) }
        #expect(error == .malformed("options frame has 15 bytes; expected 0 or 16"))
        #expect(error?.description.contains("15 bytes") == true)
    }

    @Test("Options frames of other wrong lengths are malformed", arguments: [1, 4, 8, 17, 32])
    func wrongLengthOptionsFramesAreMalformed(length: Int) {
        let error = #expect(throws: ProtocolError.self) { try decodeOptions([UInt8](repeating: 1, count: length)) }
        #expect(error == .malformed("options frame has \(length) bytes; expected 0 or 16"))
    }

    @Test("A zero timeout in the options frame is malformed")
    func zeroTimeoutIsMalformed() {
        var frame = Self.optionsFixture
        frame.replaceSubrange(0..<4, with: [0, 0, 0, 0])
        let error = #expect(throws: ProtocolError.self) { try decodeOptions(frame) }
        #expect(error == .malformed("options frame: timeout_ms must be positive"))
        #expect(error?.description.contains("timeout_ms") == true)
    }

    @Test("Zero max attempts on the wire is read as one attempt")
    func zeroAttemptsReadsAsOne() throws {
        var frame = Self.optionsFixture
        frame.replaceSubrange(8..<12, with: [0, 0, 0, 0])
        #expect(try decodeOptions(frame).maxAttempts == 1)
    }

    @Test("DispatchMeta encodes as big-endian attempt u32 then timeout u32")
    func dispatchMetaEncodesToGoldenBytes() {
        #expect(DispatchMeta(attempt: 1, timeoutMilliseconds: 10000).encoded(for: .v2) == [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x27, 0x10])
        // The version-2 example of PROTOCOL.md §13.2: attempt 1, 4999 ms left.
        #expect(DispatchMeta(attempt: 1, timeoutMilliseconds: 4999).encoded(for: .v2) == [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x13, 0x87])
        // The top bit of a u32 is a value, not a sign.
        #expect(DispatchMeta(attempt: 2, timeoutMilliseconds: 4_000_000_000).encoded(for: .v2) == [0x00, 0x00, 0x00, 0x02, 0xEE, 0x6B, 0x28, 0x00])
        #expect(DispatchMeta.version2Size == 8)
    }

    @Test("DispatchMeta golden bytes decode back to the same values")
    func dispatchMetaDecodes() throws {
        let meta = try decodeMeta([0x00, 0x00, 0x00, 0x03, 0xEE, 0x6B, 0x28, 0x00])
        #expect(meta.attempt == 3)
        #expect(meta.timeoutMilliseconds == 4_000_000_000)
        let original = DispatchMeta(attempt: .max, timeoutMilliseconds: 1)
        #expect(try decodeMeta(original.encoded(for: .v2)) == original)
    }

    @Test("A meta frame that is not exactly 8 bytes is malformed, including an empty one", arguments: [0, 1, 7, 9, 16])
    func wrongLengthMetaIsMalformed(length: Int) {
        let error = #expect(throws: ProtocolError.self) { try decodeMeta([UInt8](repeating: 0, count: length)) }
        #expect(error == .malformed("dispatch meta frame has \(length) bytes; expected 8"))
        #expect(error?.description.contains("\(length) bytes") == true)
    }
}
