import ConveyorProtocol
import Foundation

/// The members of one JSON object, each value kept as the exact bytes it came as (so a task's
/// `args` go to the broker unchanged, numbers and all). The text must be valid JSON already
/// (``JSONValidator``): this only finds where each member's value starts and ends.
struct JSONObjectScanner {
    struct Member {
        let key: String
        let value: ArraySlice<UInt8>
    }

    enum Failure: Error {
        /// The text is not an object (an array, a string, ...): what it is.
        case notAnObject(String)
    }

    /// The members of the object `bytes` holds, in order; a repeated key is kept twice.
    static func members(_ bytes: ArraySlice<UInt8>) throws(Failure) -> [Member] {
        var i = skipSpace(bytes, bytes.startIndex)
        guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "{") else {
            throw .notAnObject(i < bytes.endIndex ? kind(of: bytes[i]) : "empty")
        }
        i = skipSpace(bytes, i + 1)
        var members: [Member] = []
        if bytes[i] == UInt8(ascii: "}") { return members }
        while i < bytes.endIndex {
            let keyEnd = skipString(bytes, i)
            let key = decodeString(bytes[i..<keyEnd])
            i = skipSpace(bytes, keyEnd) + 1 // the colon
            let start = skipSpace(bytes, i)
            let end = skipValue(bytes, start)
            members.append(Member(key: key, value: bytes[start..<end]))
            i = skipSpace(bytes, end)
            if bytes[i] == UInt8(ascii: "}") { break }
            i = skipSpace(bytes, i + 1) // the comma
        }
        return members
    }

    /// The items of the JSON array `bytes` holds (valid JSON), each as the bytes it came as.
    static func items(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var i = skipSpace(bytes, bytes.startIndex) + 1
        var items: [ArraySlice<UInt8>] = []
        i = skipSpace(bytes, i)
        guard i < bytes.endIndex, bytes[i] != UInt8(ascii: "]") else { return items }
        while i < bytes.endIndex {
            let end = skipValue(bytes, i)
            items.append(bytes[i..<end])
            i = skipSpace(bytes, end)
            if i >= bytes.endIndex || bytes[i] == UInt8(ascii: "]") { break }
            i = skipSpace(bytes, i + 1)
        }
        return items
    }

    /// What a value starting with `byte` is, for messages.
    static func kind(of byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "{"): "an object"
        case UInt8(ascii: "["): "an array"
        case UInt8(ascii: "\""): "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "a boolean"
        case UInt8(ascii: "n"): "null"
        default: "a number"
        }
    }

    /// A JSON string value's text, `nil` when the value is not a string.
    static func string(_ value: ArraySlice<UInt8>) -> String? {
        guard value.first == UInt8(ascii: "\"") else { return nil }
        return decodeString(value)
    }

    private static func decodeString(_ quoted: ArraySlice<UInt8>) -> String {
        let inner = quoted.dropFirst().dropLast()
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        // Escapes: let Foundation read them (rare in keys and names).
        return (try? JSONSerialization.jsonObject(with: Data(quoted), options: .fragmentsAllowed) as? String) ?? ""
    }

    private static func skipSpace(_ b: ArraySlice<UInt8>, _ start: Int) -> Int {
        var i = start
        while i < b.endIndex, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        return i
    }

    /// The index after the string that starts at `start` (its opening quote).
    private static func skipString(_ b: ArraySlice<UInt8>, _ start: Int) -> Int {
        var i = start + 1
        while i < b.endIndex {
            switch b[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""): return i + 1
            default: i += 1
            }
        }
        return i
    }

    /// The index after the value that starts at `start`.
    private static func skipValue(_ b: ArraySlice<UInt8>, _ start: Int) -> Int {
        guard start < b.endIndex else { return start }
        switch b[start] {
        case UInt8(ascii: "\""):
            return skipString(b, start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var i = start
            while i < b.endIndex {
                switch b[i] {
                case UInt8(ascii: "\""): i = skipString(b, i); continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
                i += 1
            }
            return i
        default:
            var i = start
            while i < b.endIndex, !(b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "}") || b[i] == UInt8(ascii: "]")
                                     || b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09) { i += 1 }
            return i
        }
    }
}
