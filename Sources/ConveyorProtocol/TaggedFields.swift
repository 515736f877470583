/// The tagged-field encoding of protocol version 3 (docs/PROTOCOL.md §6.1): the `SUBMIT` options
/// field and the `DISPATCH` meta field are each a run of fields
///
///     field = tag (u16, big-endian) | length (u16, big-endian) | length bytes of value
///
/// with nothing before, between or after them (an empty run is legal). The tag's top bit is the
/// **critical** flag; the other 15 bits are the field's number. A receiver skips a field whose
/// number it does not know, unless the field is critical: then it refuses the whole item (the
/// task is rejected, naming the tag), so that a field which changes what the item means is never
/// silently ignored. When a number appears more than once, the last occurrence wins.
public enum TaggedFields {
    /// The top bit of a tag: the receiver must understand the field or refuse the item.
    public static let criticalBit: UInt16 = 0x8000
    /// Tag and length: 4 bytes before each value.
    public static let headerSize = 4
    /// The longest value a field can carry (its length is a u16).
    public static let maxValueSize = 0xFFFF

    /// `tag` as the documents and errors spell it: `0x` and four lowercase hex digits.
    public static func spell(_ tag: UInt16) -> String {
        let hex = String(tag, radix: 16)
        return "0x" + String(repeating: "0", count: 4 - hex.count) + hex
    }

    /// Calls `body` with each field's tag and value, in order, without copying or allocating.
    /// Throws `.malformed` for a header cut short or a value running past the end; `what` names the
    /// run in that error (`"options field"`).
    @inline(__always)
    static func forEach(
        in bytes: UnsafeRawBufferPointer, what: String,
        _ body: (_ tag: UInt16, _ value: UnsafeRawBufferPointer) throws(ProtocolError) -> Void
    ) throws(ProtocolError) {
        var offset = 0
        let count = bytes.count
        while offset < count {
            guard count - offset >= headerSize else {
                throw .malformed("\(what): \(count - offset) bytes left at offset \(offset), too few for a field header (4)")
            }
            let tag = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            offset += headerSize
            guard length <= count - offset else {
                throw .malformed("\(what): field \(spell(tag)) claims \(length) bytes; \(count - offset) are left")
            }
            try body(tag, UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
        }
    }

    /// A u32 value: exactly 4 bytes.
    @inline(__always)
    static func u32(_ value: UnsafeRawBufferPointer, _ name: StaticString, _ tag: UInt16, in what: String) throws(ProtocolError) -> UInt32 {
        guard value.count == 4 else { throw wrongSize(value.count, 4, name, tag, in: what) }
        return value.loadBigEndianUInt32(at: 0)
    }

    static func wrongSize(_ got: Int, _ expected: Int, _ name: StaticString, _ tag: UInt16, in what: String) -> ProtocolError {
        .malformed("\(what): \(name) (\(spell(tag))) has \(got) bytes; expected \(expected)")
    }

    /// The error for a critical field this build does not understand: named by its tag, and by its
    /// name when the number is one reserved for a later version.
    static func unsupportedCritical(_ tag: UInt16, in what: String, reserved: (UInt16) -> String?) -> ProtocolError {
        let name = reserved(tag & ~criticalBit).map { " (\($0))" } ?? ""
        return .unsupportedField("\(what): field \(spell(tag))\(name) is marked critical and this peer does not support it")
    }

    /// Appends one field: tag, length, value.
    @inline(__always)
    static func append(_ tag: UInt16, length: Int, to bytes: inout [UInt8], _ write: (inout [UInt8]) -> Void) {
        precondition(length <= maxValueSize, "a tagged field holds at most 65535 bytes")
        bytes.append(UInt8(truncatingIfNeeded: tag >> 8))
        bytes.append(UInt8(truncatingIfNeeded: tag))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
        write(&bytes)
    }

    /// A text value (a trace context field), as its UTF-8 bytes.
    static func appendText(_ tag: UInt16, _ value: String, to bytes: inout [UInt8]) {
        append(tag, length: value.utf8.count, to: &bytes) { $0.append(contentsOf: value.utf8) }
    }

    static func appendU32(_ tag: UInt16, _ value: UInt32, to bytes: inout [UInt8]) {
        append(tag, length: 4, to: &bytes) { $0.appendBigEndian(value) }
    }
}
