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

    /// The JSON text of this info (the form ``appendJSON(to:)`` writes).
    public var json: String {
        var bytes: [UInt8] = []
        appendJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the JSON text of this info to `bytes`: the one writer of result info (consumers
    /// call it for every task, the broker for the results it makes itself). Written by hand to keep
    /// Foundation off the hot path; the keys in the order of the properties, absent ones left out,
    /// `elapsed_ms` rounded to microseconds. ``init(parsing:)`` reads everything it writes.
    public func appendJSON(to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: StaticString) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(UInt8(ascii: ":"))
        }
        if let host {
            key("host")
            Self.appendQuoted(host, to: &bytes)
        }
        if let pid {
            key("pid")
            bytes.append(contentsOf: String(pid).utf8)
        }
        if let thread {
            key("thread")
            bytes.append(contentsOf: String(thread).utf8)
        }
        if let process {
            key("process")
            bytes.append(contentsOf: String(process).utf8)
        }
        if let attempts {
            key("attempts")
            bytes.append(contentsOf: String(attempts).utf8)
        }
        if let elapsedMilliseconds {
            key("elapsed_ms")
            bytes.append(contentsOf: ((elapsedMilliseconds * 1000).rounded() / 1000).description.utf8)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// `text` as a JSON string literal, the escapes of ``JSONText/quoted(_:)``, straight into bytes.
    private static func appendQuoted(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case ..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
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
