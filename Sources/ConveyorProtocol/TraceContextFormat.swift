/// The W3C Trace Context values a task carries (docs/PROTOCOL.md §6.1, options `traceparent`
/// 0x0009 and `tracestate` 0x000A; §6.2, the same numbers in the dispatch meta): what a valid one
/// looks like, and why one is not.
///
/// A `traceparent` is `version-traceid-parentid-flags` in lowercase hex: 2, 32, 16 and 2 digits,
/// 55 characters for version `00`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
/// The trace id and the parent id must not be all zeros, and the version must not be `ff`. A later
/// version may be longer (at most ``maxTraceparentLength``): its first 55 characters follow the same
/// form and the 56th is `-` (W3C Trace Context §3.2.4, "Versioning of traceparent").
///
/// A `tracestate` is at most ``maxTracestateLength`` bytes of printable ASCII (space and tab
/// included), not empty, and only sent with a `traceparent`. Its list is not parsed: it is carried
/// as it came, for the instrument at the other end.
public enum TraceContextFormat {
    /// The length of a version-00 `traceparent`.
    public static let traceparentLength = 55
    /// The longest `traceparent` carried (of a later version than 00).
    public static let maxTraceparentLength = 255
    /// The longest `tracestate` carried: the length W3C asks every hop to pass on at least (a
    /// longer one may be cut anywhere on its way), and the protocol's bound (PROTOCOL.md §6.1).
    public static let maxTracestateLength = 512

    /// Why `value` is not a valid `traceparent`, as a phrase for an error message; `nil` when it is.
    public static func problem(traceparent value: String) -> String? {
        var value = value
        return value.withUTF8 { problem(traceparent: UnsafeRawBufferPointer($0)) }
    }

    /// Why `value` is not a valid `tracestate`; `nil` when it is.
    public static func problem(tracestate value: String) -> String? {
        var value = value
        return value.withUTF8 { problem(tracestate: UnsafeRawBufferPointer($0)) }
    }

    /// The trace id of a valid `traceparent` (its 32 hex digits after the version); empty for a
    /// value too short to hold one.
    public static func traceID(ofTraceparent traceparent: String) -> Substring {
        let utf8 = traceparent.utf8
        guard utf8.count >= 35 else { return "" }
        let start = utf8.index(utf8.startIndex, offsetBy: 3)
        return Substring(utf8[start..<utf8.index(start, offsetBy: 32)])
    }

    /// ``problem(traceparent:)`` on bytes, allocating nothing when they are valid.
    public static func problem(traceparent bytes: UnsafeRawBufferPointer) -> String? {
        let count = bytes.count
        guard count >= traceparentLength else {
            return "it has \(count) characters; version 00 has \(traceparentLength): \(form)"
        }
        guard count <= maxTraceparentLength else {
            return "it has \(count) characters; at most \(maxTraceparentLength) are carried"
        }
        for offset in 0..<traceparentLength {
            if offset == 2 || offset == 35 || offset == 52 {
                guard bytes[offset] == UInt8(ascii: "-") else { return "character \(offset + 1) is not '-': \(form)" }
            } else if !isLowercaseHex(bytes[offset]) {
                return "character \(offset + 1) is not a lowercase hex digit: \(form)"
            }
        }
        let version = (bytes[0], bytes[1])
        if version == (UInt8(ascii: "f"), UInt8(ascii: "f")) { return "version ff is invalid" }
        if version == (UInt8(ascii: "0"), UInt8(ascii: "0")) {
            guard count == traceparentLength else {
                return "it has \(count) characters; version 00 has \(traceparentLength): \(form)"
            }
        } else if count > traceparentLength, bytes[traceparentLength] != UInt8(ascii: "-") {
            return "character \(traceparentLength + 1) is not '-' (a later version's fields follow the 55 characters of version 00)"
        }
        if (3..<35).allSatisfy({ bytes[$0] == UInt8(ascii: "0") }) { return "its trace id is all zeros" }
        if (36..<52).allSatisfy({ bytes[$0] == UInt8(ascii: "0") }) { return "its parent id is all zeros" }
        return nil
    }

    /// ``problem(tracestate:)`` on bytes, allocating nothing when they are valid.
    public static func problem(tracestate bytes: UnsafeRawBufferPointer) -> String? {
        if bytes.isEmpty { return "it is empty (leave it out instead)" }
        guard bytes.count <= maxTracestateLength else {
            return "it has \(bytes.count) bytes; at most \(maxTracestateLength) are carried"
        }
        if let offset = bytes.firstIndex(where: { !(0x20...0x7E).contains($0) && $0 != 0x09 }) {
            return "byte \(offset + 1) (0x\(String(bytes[offset], radix: 16))) is not printable ASCII"
        }
        return nil
    }

    private static let form = "expected version-traceid-parentid-flags in lowercase hex (2, 32, 16 and 2 digits), e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @inline(__always)
    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
    }

    /// A `traceparent` or `tracestate` field received in an options or meta run: the value when it
    /// is valid; when it is not, `nil` (the field is dropped, as W3C asks of a receiver) if it was
    /// sent plain, and a `.malformed` error if it was sent critical (its sender asked not to have it
    /// ignored).
    static func decode(_ value: UnsafeRawBufferPointer, tag: UInt16, name: StaticString, in what: String,
                       problem: (UnsafeRawBufferPointer) -> String?) throws(ProtocolError) -> String? {
        guard let reason = problem(value) else { return String(decoding: value, as: UTF8.self) }
        guard tag & TaggedFields.criticalBit != 0 else { return nil }
        throw .malformed("\(what): \(name) (\(TaggedFields.spell(tag))) is not valid: \(reason)")
    }
}
