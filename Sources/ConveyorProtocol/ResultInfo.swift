/// The info frame of a result: where and how the task ran. Consumers write it; the broker writes
/// a short one (attempts only) for results it makes itself (timeouts, cancellations).
public struct ResultInfo: Sendable, Codable, Equatable {
    public var host: String?
    public var pid: Int?
    /// Index of the worker thread in its pool, from 0.
    public var thread: Int?
    /// Index of the consumer process under its supervisor, from 0.
    public var process: Int?
    public var attempts: Int?
    /// Milliseconds the handler ran.
    public var elapsedMilliseconds: Double?

    enum CodingKeys: String, CodingKey {
        case host, pid, thread, process, attempts
        case elapsedMilliseconds = "elapsed_ms"
    }

    public init(host: String? = nil, pid: Int? = nil, thread: Int? = nil, process: Int? = nil,
                attempts: Int? = nil, elapsedMilliseconds: Double? = nil) {
        self.host = host
        self.pid = pid
        self.thread = thread
        self.process = process
        self.attempts = attempts
        self.elapsedMilliseconds = elapsedMilliseconds
    }

    /// The JSON text of this info, written by hand to keep Foundation off the hot path.
    public var json: String {
        var parts: [String] = []
        if let host { parts.append("\"host\":\(JSONText.quoted(host))") }
        if let pid { parts.append("\"pid\":\(pid)") }
        if let thread { parts.append("\"thread\":\(thread)") }
        if let process { parts.append("\"process\":\(process)") }
        if let attempts { parts.append("\"attempts\":\(attempts)") }
        if let elapsedMilliseconds {
            parts.append("\"elapsed_ms\":\((elapsedMilliseconds * 1000).rounded() / 1000)")
        }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

extension ResultInfo {
    /// Parses an info frame without Foundation, for the producer's hot path: a flat JSON object
    /// whose strings have no escapes, as ``json`` writes it. Unknown keys are skipped, as
    /// `Decodable` would. Returns `nil` for anything else (escapes, nesting, a value of the wrong
    /// type); callers fall back to `JSONDecoder` then.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        var info = ResultInfo()
        var index = 0
        let count = bytes.count
        func skipSpace() {
            while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }
        /// A string without escapes; its bytes' range.
        func string() -> Range<Int>? {
            guard index < count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let start = index + 1
            var end = start
            while end < count, bytes[end] != UInt8(ascii: "\"") {
                if bytes[end] == UInt8(ascii: "\\") || bytes[end] < 0x20 { return nil }
                end += 1
            }
            guard end < count else { return nil }
            index = end + 1
            return start..<end
        }
        func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        /// Whether `range` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
        func isNumber(_ range: Range<Int>) -> Bool {
            var i = range.lowerBound
            func digits() -> Int {
                let start = i
                while i < range.upperBound, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
                return i - start
            }
            if i < range.upperBound, bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < range.upperBound else { return false }
            if bytes[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { return false }
            if i < range.upperBound, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { return false }
            }
            if i < range.upperBound, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < range.upperBound, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { return false }
            }
            return i == range.upperBound
        }
        skipSpace()
        guard index < count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        skipSpace()
        if index < count, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipSpace()
                guard let key = string(), String(validating: bytes[key], as: UTF8.self) != nil else { return nil }
                skipSpace()
                guard index < count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipSpace()
                guard index < count else { return nil }
                let keyText = text(key)
                if bytes[index] == UInt8(ascii: "\"") {
                    guard let value = string(), let valueText = String(validating: bytes[value], as: UTF8.self) else { return nil }
                    switch keyText {
                    case "host": info.host = valueText
                    case "pid", "thread", "process", "attempts", "elapsed_ms": return nil
                    default: break
                    }
                } else if bytes[index] == UInt8(ascii: "n") {
                    guard index + 4 <= count, text(index..<index + 4) == "null" else { return nil }
                    index += 4
                } else {
                    let start = index
                    while index < count, let byte = Optional(bytes[index]),
                          (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                        index += 1
                    }
                    guard isNumber(start..<index) else { return nil }
                    let number = text(start..<index)
                    switch keyText {
                    case "pid": guard let value = Int(number) else { return nil }; info.pid = value
                    case "thread": guard let value = Int(number) else { return nil }; info.thread = value
                    case "process": guard let value = Int(number) else { return nil }; info.process = value
                    case "attempts": guard let value = Int(number) else { return nil }; info.attempts = value
                    case "elapsed_ms": guard let value = Double(number) else { return nil }; info.elapsedMilliseconds = value
                    case "host": return nil
                    default: guard !number.isEmpty else { return nil }
                    }
                }
                skipSpace()
                guard index < count else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return nil }
                index += 1
                break
            }
        }
        skipSpace()
        guard index == count else { return nil }
        self = info
    }
}
