import ConveyorProtocol
import Testing

/// The version-3 options field (PROTOCOL.md §6.1): golden bytes, the rules for unknown, critical
/// and repeated tags, and seeded-random round trips and garbage against a reference decoder
/// written here from the document.
@Suite("Tagged options (CVY3)")
struct TaggedOptionsTests {
    /// timeout 30 s, priority -2, 3 attempts, backoff 500 ms: every option differs from its default.
    static let fullFixture: [UInt8] = [
        0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x75, 0x30, // 0x0001 timeout_ms 30000
        0x00, 0x02, 0x00, 0x04, 0xFF, 0xFF, 0xFF, 0xFE, // 0x0002 priority -2
        0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, // 0x0003 max_attempts 3
        0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x01, 0xF4, // 0x0004 retry_backoff_ms 500
    ]
    static let full = TaskOptions(timeoutMilliseconds: 30000, priority: -2, maxAttempts: 3, retryBackoffMilliseconds: 500)

    func decode(_ bytes: [UInt8]) throws(ProtocolError) -> TaskOptions {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ProtocolError) -> TaskOptions in try TaskOptions(field: buffer, version: .v3) } }.get()
    }

    func decodeError(_ bytes: [UInt8]) -> ProtocolError? {
        do { _ = try decode(bytes); return nil } catch { return error }
    }

    @Test("Options encode as tag-length-value fields in number order, big-endian")
    func goldenBytes() {
        #expect(Self.full.encoded(for: .v3) == Self.fullFixture)
        #expect(Self.full.encodedCount(for: .v3) == 32)
    }

    @Test("Only options that differ from their defaults are written; the defaults are an empty field")
    func onlyNonDefaults() {
        #expect(TaskOptions.default.encoded(for: .v3) == [])
        // The worked example of PROTOCOL.md §11: timeout 5 s, the rest defaults.
        #expect(TaskOptions(timeoutMilliseconds: 5000).encoded(for: .v3) == [0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x13, 0x88])
        #expect(TaskOptions(priority: 7).encoded(for: .v3) == tlv(0x0002, be32(7)))
        #expect(TaskOptions(maxAttempts: 1).encoded(for: .v3) == [])
    }

    @Test("The golden bytes, and the fields in any order, decode to the same options")
    func goldenDecodes() throws {
        #expect(try decode(Self.fullFixture) == Self.full)
        let reversed = stride(from: 24, through: 0, by: -8).flatMap { Self.fullFixture[$0..<($0 + 8)] }
        #expect(try decode(Array(reversed)) == Self.full)
        #expect(try decode([]) == .default)
    }

    @Test("A known option sent critical is understood like a plain one")
    func criticalKnownOption() throws {
        #expect(try decode(tlv(0x8001, be32(42))) == TaskOptions(timeoutMilliseconds: 42))
        #expect(try decode(tlv(0x8002, be32(UInt32(bitPattern: -9)))) == TaskOptions(priority: -9))
    }

    @Test("An unknown plain option is skipped, whatever its length")
    func unknownPlainOptionSkipped() throws {
        let bytes = tlv(0x0042, []) + tlv(0x0001, be32(1234)) + tlv(0x7ABC, [UInt8](repeating: 0xEE, count: 300))
        #expect(try decode(bytes) == TaskOptions(timeoutMilliseconds: 1234))
    }

    @Test("An unknown critical option rejects the task with a message naming the tag")
    func unknownCriticalOptionRejected() {
        let error = decodeError(tlv(0x0001, be32(1000)) + tlv(0x8042, [1, 2]))
        #expect(error == .unsupportedField("options field: field 0x8042 is marked critical and this peer does not support it"))
        #expect(error?.description == "unsupported: options field: field 0x8042 is marked critical and this peer does not support it")
    }

    @Test("A reserved option sent critical is rejected by name: this version does not implement it", arguments: [
        (OptionTag.workflowParent, "workflow_parent", 5),
    ])
    func reservedCriticalRejected(number: UInt16, name: String, length: Int) {
        let tag = number | TaggedFields.criticalBit
        let error = decodeError(tlv(tag, [UInt8](repeating: 0x41, count: length)))
        #expect(error == .unsupportedField("options field: field \(TaggedFields.spell(tag)) (\(name)) is marked critical and this peer does not support it"))
        // Plain, the same option is skipped.
        #expect(decodeError(tlv(number, [UInt8](repeating: 0x41, count: length))) == nil)
    }

    @Test("cancel_on_disconnect: an empty critical field, read back plain or critical; any value is malformed")
    func cancelOnDisconnect() throws {
        let options = TaskOptions(cancelOnDisconnect: true)
        let bytes = options.encoded(for: .v3)
        #expect(bytes == [0x80, 0x08, 0x00, 0x00])
        #expect(options.encodedCount(for: .v3) == bytes.count)
        #expect(try decode(bytes) == options)
        #expect(try decode([0x00, 0x08, 0x00, 0x00]) == options)
        #expect(try decode([]).cancelOnDisconnect == false)
        #expect(decodeError(tlv(0x8008, [1])) == .malformed("options field: cancel_on_disconnect (0x8008) has 1 bytes; expected 0"))
        #expect(options.encoded(for: .v2).isEmpty, "version 2 cannot carry it")
    }

    @Test("When an option appears twice, the last one wins")
    func lastWins() throws {
        let bytes = tlv(0x0001, be32(1000)) + tlv(0x0002, be32(5)) + tlv(0x0001, be32(2000))
        #expect(try decode(bytes) == TaskOptions(timeoutMilliseconds: 2000, priority: 5))
    }

    @Test("A known option of the wrong length is malformed, naming the option and the lengths", arguments: [0, 3, 5, 8])
    func wrongValueLength(length: Int) {
        let error = decodeError(tlv(0x0003, [UInt8](repeating: 0, count: length)))
        #expect(error == .malformed("options field: max_attempts (0x0003) has \(length) bytes; expected 4"))
    }

    @Test("A header cut short, or a value running past the end, is malformed")
    func truncated() {
        #expect(decodeError([0x00, 0x01, 0x00]) == .malformed("options field: 3 bytes left at offset 0, too few for a field header (4)"))
        #expect(decodeError(tlv(0x0001, be32(5)) + [0x00])
                    == .malformed("options field: 1 bytes left at offset 8, too few for a field header (4)"))
        #expect(decodeError([0x00, 0x01, 0x00, 0x04, 0x00, 0x00])
                    == .malformed("options field: field 0x0001 claims 4 bytes; 2 are left"))
        #expect(decodeError([0x12, 0x34, 0xFF, 0xFF]) == .malformed("options field: field 0x1234 claims 65535 bytes; 0 are left"))
    }

    @Test("timeout_ms 0 is malformed; max_attempts 0 reads as 1")
    func valueRules() throws {
        #expect(decodeError(tlv(0x0001, be32(0))) == .malformed("options field: timeout_ms must be positive"))
        #expect(try decode(tlv(0x0003, be32(0))).maxAttempts == 1)
    }

    @Test("A version-2 options field is read and written as 16 bytes for CVY2 peers")
    func version2StillServed() throws {
        #expect(Self.full.encoded(for: .v2) == BinaryFrameTests.optionsFixture)
        #expect(try BinaryFrameTests.optionsFixture.withUnsafeBytes { try TaskOptions(field: $0, version: .v2) } == Self.full)
        // The same 32 tagged bytes are not a version-2 field.
        let error = #expect(throws: ProtocolError.self) { try Self.fullFixture.withUnsafeBytes { try TaskOptions(field: $0, version: .v2) } }
        #expect(error == .malformed("options frame has 32 bytes; expected 0 or 16"))
    }

    @Test("The spelling of tags in errors and documents: 0x and four lowercase hex digits")
    func spelling() {
        #expect(TaggedFields.spell(0x0001) == "0x0001")
        #expect(TaggedFields.spell(0x8005) == "0x8005")
        #expect(TaggedFields.spell(0xFFFF) == "0xffff")
    }

    // MARK: Seeded random

    static func randomOptions(_ random: inout SeededGenerator) -> TaskOptions {
        func pick<T>(_ common: T, _ any: @autoclosure () -> T) -> T { random.next() % 3 == 0 ? common : any() }
        return TaskOptions(
            timeoutMilliseconds: pick(300_000, max(1, UInt32(truncatingIfNeeded: random.next()))),
            priority: pick(0, Int32(truncatingIfNeeded: random.next())),
            maxAttempts: pick(1, UInt32(truncatingIfNeeded: random.next())),
            retryBackoffMilliseconds: pick(1000, UInt32(truncatingIfNeeded: random.next())))
    }

    @Test("10,000 random options survive the round trip in both versions, with unknown plain fields mixed in")
    func randomRoundTrips() throws {
        var random = SeededGenerator(seed: 0xC0_FFEE)
        for _ in 0..<10_000 {
            let options = Self.randomOptions(&random)
            let encoded = options.encoded(for: .v3)
            #expect(encoded.count == options.encodedCount(for: .v3))
            #expect(try decode(encoded) == options)
            #expect(try options.encoded(for: .v2).withUnsafeBytes { try TaskOptions(field: $0, version: .v2) } == options)
            // Insert unknown plain fields between the fields: the options do not change.
            var fields = stride(from: 0, to: encoded.count, by: 8).map { Array(encoded[$0..<($0 + 8)]) }
            for _ in 0..<Int(random.next() % 4) {
                let number = UInt16(truncatingIfNeeded: random.next()) & 0x7FFF | 0x0100
                let value = (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                fields.insert(tlv(number, value), at: Int(random.next() % UInt64(fields.count + 1)))
            }
            #expect(try decode(Array(fields.joined())) == options)
        }
    }

    /// The decoder of PROTOCOL.md §6.1 written as plainly as possible, sharing no code with the
    /// implementation: the options, or the kind of error.
    enum Outcome: Equatable { case options(TaskOptions), malformed, unsupported }

    static func reference(_ bytes: [UInt8]) -> Outcome {
        var values: [UInt16: [UInt8]] = [:]
        var cancelOnDisconnect = false, requireConsumer = false
        var traceparent: String?, tracestate: String?, callbackURL: String?, uniqueKey: String?
        var notBefore: UInt64?
        var i = 0
        while i < bytes.count {
            if bytes.count - i < 4 { return .malformed }
            let tag = UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 4
            if i + length > bytes.count { return .malformed }
            let number = tag & 0x7FFF
            if (1...4).contains(number) {
                if length != 4 { return .malformed }
                values[number] = Array(bytes[i..<(i + 4)])
            } else if number == 8 || number == 0x0B {
                if length != 0 { return .malformed }
                if number == 8 { cancelOnDisconnect = true } else { requireConsumer = true }
            } else if number == 9 || number == 10 {
                let value = Array(bytes[i..<(i + length)])
                let valid = number == 9 ? referenceTraceparent(value) : referenceTracestate(value)
                if !valid && tag & 0x8000 != 0 { return .malformed }
                let text = valid ? String(decoding: value, as: UTF8.self) : nil
                if number == 9 { traceparent = text } else { tracestate = text }
            } else if number == 5 {
                // not_before: 8 bytes, big-endian.
                if length != 8 { return .malformed }
                notBefore = bytes[i..<(i + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            } else if number == 6 {
                // unique_key: 1-255 bytes of visible ASCII.
                let value = Array(bytes[i..<(i + length)])
                guard (1...255).contains(length), value.allSatisfy({ (0x21...0x7E).contains($0) }) else { return .malformed }
                uniqueKey = String(decoding: value, as: UTF8.self)
            } else if number == 0x0D {
                if length != 4 { return .malformed }
                values[number] = Array(bytes[i..<(i + 4)])
            } else if number == 0x0C {
                // callback_url: one that is not valid rejects the task, critical or not.
                let value = Array(bytes[i..<(i + length)])
                guard referenceCallback(value) else { return .malformed }
                callbackURL = String(decoding: value, as: UTF8.self)
            } else if tag & 0x8000 != 0 {
                return .unsupported
            }
            i += length
        }
        func u32(_ number: UInt16, _ fallback: UInt32) -> UInt32 {
            guard let v = values[number] else { return fallback }
            return UInt32(v[0]) << 24 | UInt32(v[1]) << 16 | UInt32(v[2]) << 8 | UInt32(v[3])
        }
        let timeout = u32(1, 300_000)
        if timeout == 0 { return .malformed }
        return .options(TaskOptions(timeoutMilliseconds: timeout, priority: Int32(bitPattern: u32(2, 0)),
                                    maxAttempts: u32(3, 1), retryBackoffMilliseconds: u32(4, 1000),
                                    cancelOnDisconnect: cancelOnDisconnect, requireConsumer: requireConsumer,
                                    traceparent: traceparent, tracestate: traceparent == nil ? nil : tracestate,
                                    callbackURL: callbackURL, notBefore: notBefore, uniqueKey: uniqueKey,
                                    uniqueTTLMilliseconds: u32(0x0D, 0)))
    }

    /// 1-2048 bytes of visible ASCII: `http://` or `https://` (any case), then a host.
    static func referenceCallback(_ value: [UInt8]) -> Bool {
        guard (1...2048).contains(value.count), value.allSatisfy({ (0x21...0x7E).contains($0) }) else { return false }
        let text = String(decoding: value, as: UTF8.self)
        let lower = text.lowercased()
        guard let scheme = ["https://", "http://"].first(where: { lower.hasPrefix($0) }) else { return false }
        let authority = text.dropFirst(scheme.count).prefix { !"/?#".contains($0) }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        return !host.isEmpty && host.first != ":"
    }

    /// A version-00 traceparent, as W3C writes it (later versions are not generated here).
    static func referenceTraceparent(_ value: [UInt8]) -> Bool {
        let text = String(decoding: value, as: UTF8.self)
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard value.count == 55, parts.map(\.count) == [2, 32, 16, 2],
              parts.allSatisfy({ $0.allSatisfy { "0123456789abcdef".contains($0) } }) else { return false }
        return parts[0] == "00" && parts[1] != String(repeating: "0", count: 32) && parts[2] != String(repeating: "0", count: 16)
    }

    /// 1-512 bytes of printable ASCII or tab.
    static func referenceTracestate(_ value: [UInt8]) -> Bool {
        (1...512).contains(value.count) && value.allSatisfy { (0x20...0x7E).contains($0) || $0 == 0x09 }
    }

    @Test("20,000 garbage and damaged options fields: no crash, and the same verdict as the reference decoder")
    func randomGarbage() {
        var random = SeededGenerator(seed: 0xBAD_5EED)
        var verdicts: [String: Int] = [:]
        for round in 0..<20_000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0: // pure noise
                bytes = (0..<Int(random.next() % 48)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            case 1: // a valid field run, cut at a random point
                let valid = Self.randomOptions(&random).encoded(for: .v3)
                bytes = Array(valid.prefix(Int(random.next() % UInt64(valid.count + 1))))
            case 2: // a valid field run with a few bytes flipped
                bytes = Self.randomOptions(&random).encoded(for: .v3) + tlv(UInt16(truncatingIfNeeded: random.next() % 16), [1, 2, 3, 4])
                for _ in 0..<1 + Int(random.next() % 3) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))
                }
            default: // small tags and small lengths, so that known fields and critical bits come up often
                bytes = []
                for _ in 0..<Int(random.next() % 5) {
                    let tag = UInt16(random.next() % 8) | (random.next() % 4 == 0 ? 0x8000 : 0)
                    let length = Int(random.next() % 6)
                    bytes += tlv(tag, (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                }
                if random.next() % 5 == 0, !bytes.isEmpty { bytes.removeLast() }
            }
            let expected = Self.reference(bytes)
            let got: Outcome
            do {
                got = .options(try decode(bytes))
            } catch .malformed {
                got = .malformed
            } catch .unsupportedField {
                got = .unsupported
            } catch {
                Issue.record("unexpected error \(error) for \(bytes)")
                continue
            }
            #expect(got == expected, "\(bytes)")
            switch got {
            case .options: verdicts["options", default: 0] += 1
            case .malformed: verdicts["malformed", default: 0] += 1
            case .unsupported: verdicts["unsupported", default: 0] += 1
            }
        }
        // Each verdict came up often enough to mean something.
        #expect(verdicts.count == 3 && verdicts.values.allSatisfy { $0 > 300 }, "\(verdicts)")
    }
}
