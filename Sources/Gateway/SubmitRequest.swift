import ConveyorProducer
import ConveyorProtocol
import ConveyorWebhooks
import Foundation

/// One task of `POST /v1/tasks` (or one item of a batch), read and checked: every error names the
/// field (`tasks[3].options.priority`) and says what it should be.
struct SubmitRequest {
    var name: String
    var args: RawJSON
    var options: TaskOptions

    static let fields = ["name", "args", "options", "callback_url"]
    static let optionFields = ["timeout_ms", "priority", "attempts", "retry_backoff_ms", "require_consumer", "traceparent", "tracestate",
                               "not_before", "delay_seconds", "unique_key", "unique_ttl_seconds"]

    /// Reads a whole body that must be one JSON object.
    static func body(_ bytes: [UInt8]) throws(APIError) -> [JSONObjectScanner.Member] {
        do {
            try JSONValidator.validate(bytes)
        } catch {
            throw APIError(.badRequest, "bad_json", "the body is not valid JSON: \(error)")
        }
        do {
            return try JSONObjectScanner.members(bytes[...])
        } catch {
            guard case .notAnObject(let kind) = error else { throw APIError(.badRequest, "bad_json", "the body is not a JSON object") }
            throw APIError(.badRequest, "bad_json", "the body must be a JSON object, not \(kind)")
        }
    }

    /// The members of an object, each key known and given once.
    static func checked(_ members: [JSONObjectScanner.Member], known: [String], at path: String) throws(APIError) -> [String: ArraySlice<UInt8>] {
        var seen: [String: ArraySlice<UInt8>] = [:]
        for member in members {
            let field = path.isEmpty ? member.key : "\(path).\(member.key)"
            guard known.contains(member.key) else {
                throw APIError(.badRequest, "unknown_field", "\(field): unknown field; known fields are \(known.joined(separator: ", "))")
            }
            guard seen.updateValue(member.value, forKey: member.key) == nil else {
                throw APIError.badField(field, "given twice")
            }
        }
        return seen
    }

    /// `callbacks`: where callback URLs may point; `nil` when the gateway delivers no webhooks.
    init(members: [JSONObjectScanner.Member], at path: String = "", defaults: TaskOptions,
         callbacks: CallbackPolicy?) throws(APIError) {
        let prefix = path.isEmpty ? "" : "\(path)."
        let fields = try Self.checked(members, known: Self.fields, at: path)
        guard let nameValue = fields["name"] else { throw APIError.badField(prefix + "name", "required: the task's name, a string") }
        guard let name = JSONObjectScanner.string(nameValue) else {
            throw APIError.badField(prefix + "name", "must be a string, not \(JSONObjectScanner.kind(of: nameValue.first ?? 0))")
        }
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= Limits.maxIdentifierBytes, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError.badField(prefix + "name", "must be 1-\(Limits.maxIdentifierBytes) characters of visible ASCII")
        }
        self.name = name
        args = fields["args"].map { RawJSON(bytes: Array($0)) } ?? RawJSON("{}")
        options = defaults
        if let value = fields["options"] {
            guard value.first == UInt8(ascii: "{") else {
                throw APIError.badField(prefix + "options", "must be an object, not \(JSONObjectScanner.kind(of: value.first ?? 0))")
            }
            let members: [JSONObjectScanner.Member]
            do { members = try JSONObjectScanner.members(value) } catch { throw APIError.badField(prefix + "options", "must be an object") }
            try readOptions(try Self.checked(members, known: Self.optionFields, at: prefix + "options"), at: prefix + "options.")
        }
        if let value = fields["callback_url"] {
            guard let url = JSONObjectScanner.string(value) else { throw APIError.badField(prefix + "callback_url", "must be a string (an http or https URL)") }
            guard let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                  !(parsed.host ?? "").isEmpty else {
                throw APIError.badField(prefix + "callback_url", "must be an absolute http or https URL")
            }
            if let problem = Webhook.problem(callbackURL: url) { throw APIError.badField(prefix + "callback_url", problem) }
            guard let callbacks else {
                throw APIError(.unprocessableContent, "callbacks_off",
                               "\(prefix)callback_url: this gateway delivers no webhooks (start it with --webhook-secret-file FILE and --callback-allow HOST); leave callback_url out and poll GET /v1/tasks/{id}?wait=30")
            }
            if let problem = callbacks.problem(url: url) { throw APIError.badField(prefix + "callback_url", problem) }
            options.callbackURL = url
        }
    }

    private mutating func readOptions(_ fields: [String: ArraySlice<UInt8>], at prefix: String) throws(APIError) {
        func integer(_ key: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int64? {
            guard let value = fields[key] else { return nil }
            let text = String(decoding: value, as: UTF8.self)
            // JSON has one number type: 5.0 and 5e2 are whole numbers too (JSON Schema says so).
            let whole = Int64(text) ?? Double(text).flatMap { $0.rounded() == $0 && abs($0) < 1e15 ? Int64($0) : nil }
            guard let number = whole, range.contains(number) else {
                throw APIError.badField(prefix + key, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(text.prefix(40))")
            }
            return number
        }
        func text(_ key: String) throws(APIError) -> String? {
            guard let value = fields[key] else { return nil }
            guard let string = JSONObjectScanner.string(value) else { throw APIError.badField(prefix + key, "must be a string") }
            return string
        }
        if let ms = try integer("timeout_ms", 1...4_000_000_000) { options.timeoutMilliseconds = UInt32(ms) }
        if let priority = try integer("priority", Int64(Int32.min)...Int64(Int32.max)) { options.priority = Int32(priority) }
        if let attempts = try integer("attempts", 1...1_000) { options.maxAttempts = UInt32(attempts) }
        if let backoff = try integer("retry_backoff_ms", 0...86_400_000) { options.retryBackoffMilliseconds = UInt32(backoff) }
        if let value = fields["require_consumer"] {
            switch String(decoding: value, as: UTF8.self) {
            case "true": options.requireConsumer = true
            case "false": options.requireConsumer = false
            default: throw APIError.badField(prefix + "require_consumer", "must be true or false")
            }
        }
        func seconds(_ key: String, _ range: ClosedRange<Double>) throws(APIError) -> Double? {
            guard let value = fields[key] else { return nil }
            let text = String(decoding: value, as: UTF8.self)
            guard let number = Double(text), number.isFinite, range.contains(number) else {
                throw APIError.badField(prefix + key, "must be a number of seconds from \(Int(range.lowerBound)) to \(Int(range.upperBound)), not \(text.prefix(40))")
            }
            return number
        }
        options.traceparent = try text("traceparent")
        options.tracestate = try text("tracestate")
        let maxDelay = Double(TaskOptions.maxDelayMilliseconds / 1000)
        if let at = try integer("not_before", 0...253_402_300_799_999) {
            guard fields["delay_seconds"] == nil else {
                throw APIError.badField(prefix + "delay_seconds", "not_before and delay_seconds both say when the task runs: give one of them")
            }
            options.notBefore = UInt64(at)
        }
        if let delay = try seconds("delay_seconds", 0...maxDelay) {
            options.notBefore = UInt64(((Date().timeIntervalSince1970 + delay) * 1000).rounded(.down))
        }
        options.uniqueKey = try text("unique_key")
        if let ttl = try seconds("unique_ttl_seconds", 0...4_000_000) {
            guard options.uniqueKey != nil else {
                throw APIError.badField(prefix + "unique_ttl_seconds", "is how long a finished task keeps its unique_key: give unique_key too")
            }
            options.uniqueTTLMilliseconds = UInt32((ttl * 1000).rounded())
        }
        if let key = options.uniqueKey, key.isEmpty || key.utf8.count > 255 || !key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw APIError.badField(prefix + "unique_key", "must be 1-255 bytes of visible ASCII (no spaces)")
        }
        if let problem = options.problem {
            throw APIError.badField(prefix + (problem.hasPrefix("tracestate") ? "tracestate" : "traceparent"), problem)
        }
    }

    func submission(id: String?) -> TaskSubmission {
        TaskSubmission(name, json: args, options: options, id: id)
    }
}
