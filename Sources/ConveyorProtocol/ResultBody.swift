/// Why a task did not succeed, carried as `"kind"` in the JSON body of a non-`ok` result.
public enum ErrorKind: String, Sendable, Codable {
    /// The handler threw; `error` holds its text.
    case handlerError = "handler_error"
    /// No handler is registered under the task's name on the consumer that got it.
    case unknownTask = "unknown_task"
    /// The args are not valid JSON.
    case malformedJSON = "malformed_json"
    /// The args are JSON but do not decode to the handler's argument type.
    case badArgs = "bad_args"
    /// The task passed its time limit, queued or running.
    case timeout
    /// The task was cancelled while queued.
    case cancelled
    /// The broker refused the task (queue full, bad id, name or options, shutting down).
    case rejected
    /// Every allowed attempt failed or was lost.
    case attemptsExhausted = "attempts_exhausted"
    /// The consumer was shutting down or lost.
    case consumerLost = "consumer_lost"
}

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

/// The announcement a consumer sends in `READY`.
public struct ReadyInfo: Sendable, Codable, Equatable {
    /// Tasks the broker may hand this consumer at once: its threads plus its prefetch.
    public var capacity: Int
    /// Task names the consumer serves.
    public var tasks: [String]
    public var host: String
    public var pid: Int
    public var threads: Int
    public var process: Int?
    /// Milliseconds between heartbeats that the consumer will send and expects.
    public var heartbeatMilliseconds: Int?
    /// `true` when this only changes the capacity of a consumer the broker knows: a broker that
    /// does not know the sender answers `DISCONNECT` instead of registering it.
    public var update: Bool?

    enum CodingKeys: String, CodingKey {
        case capacity, tasks, host, pid, threads, process
        case heartbeatMilliseconds = "heartbeat_ms"
        case update
    }

    public init(capacity: Int, tasks: [String], host: String, pid: Int, threads: Int, process: Int? = nil,
                heartbeatMilliseconds: Int? = nil, update: Bool? = nil) {
        self.update = update
        self.capacity = capacity
        self.tasks = tasks
        self.host = host
        self.pid = pid
        self.threads = threads
        self.process = process
        self.heartbeatMilliseconds = heartbeatMilliseconds
    }
}

/// Limits on identifiers.
public enum Limits {
    /// Task ids and names are 1–255 bytes of visible ASCII (0x21–0x7E): Swift compares canonically
    /// equivalent Unicode strings as equal, so Unicode ids could collide.
    public static let maxIdentifierBytes = 255
    /// The largest capacity (credit) a consumer may announce in READY.
    public static let maxCapacity = 100_000
    /// The default cap on one task's args or result (`--max-message-size`).
    public static let defaultMaxMessageSize: Int64 = 16 * 1024 * 1024
    /// Messages that carry groups stop taking more once their packed frame passes this many
    /// bytes, so a message holds many small tasks or one large one.
    public static let packedMessageTarget = 1 << 20
    /// Added to the size cap of a socket's inbound frames (`ZMQ_MAXMSGSIZE`): room for the
    /// packed messages above on top of one task of the largest allowed size.
    public static let packedFrameAllowance: Int64 = 2 << 20
    /// The largest `--max-message-size` the command line takes.
    public static let maxMessageSizeLimit: Int64 = 1 << 30

    /// The cap on a socket's inbound frames (`ZMQ_MAXMSGSIZE`) for a message size: the size plus
    /// ``packedFrameAllowance``, or no cap (-1) where that would overflow.
    public static func frameLimit(forMessageSize size: Int64) -> Int64 {
        let (sum, overflow) = size.addingReportingOverflow(packedFrameAllowance)
        return overflow || size < 0 ? -1 : sum
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
