/// JSON text building without Foundation, for the few small documents the hot path writes.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20:
                let hex = String(s.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// The body of a non-`ok` result: `{"error": "...", "kind": "..."}`.
    public static func errorBody(_ kind: ErrorKind, _ message: String) -> String {
        "{\"error\":\(quoted(message)),\"kind\":\"\(kind.rawValue)\"}"
    }
}
