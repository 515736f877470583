import ConveyorProducer
import ConveyorProtocol
import HTTPTypes
import Hummingbird

extension Gateway {
    /// What a task of the gateway gets unless its `options` say otherwise: the broker refuses a
    /// task no connected consumer serves (an HTTP client sees no warning, so it gets a 422), and
    /// the library's other defaults.
    static let defaultOptions = TaskOptions(requireConsumer: true)

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!

    /// The `Idempotency-Key` header, checked: 1-200 characters of visible ASCII.
    static func idempotencyKey(_ request: Request) throws(APIError) -> String? {
        guard let key = request.headers[idempotencyKey] else { return nil }
        guard !key.isEmpty, key.utf8.count <= 200, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError(.badRequest, "invalid_header", "Idempotency-Key: must be 1-200 characters of visible ASCII")
        }
        return key
    }

    /// The task id an idempotency key stands for: the same token and key give the same id, so a
    /// retried POST is the same task (the broker takes an id it holds as that task again).
    /// `i` + 26 characters of the SHA-256 of the token's name and the key (156 bits).
    static func taskID(token: String, key: String, index: Int? = nil) -> String {
        let digest = Digest.sha256(Array("\(token)\n\(key)\(index.map { "\n\($0)" } ?? "")".utf8))
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_".utf8)
        var id: [UInt8] = [UInt8(ascii: "i")]
        var bits = 0, value = 0
        for byte in digest where id.count < 27 {
            value = (value << 8) | Int(byte)
            bits += 8
            while bits >= 6, id.count < 27 {
                bits -= 6
                id.append(alphabet[(value >> bits) & 63])
            }
        }
        return String(decoding: id, as: UTF8.self)
    }

    func submit(_ request: Request) async throws -> Response {
        let caller = try authorize(request, .submit)
        let key = try Self.idempotencyKey(request)
        let task = try SubmitRequest(members: try SubmitRequest.body(try await body(request)), defaults: Self.defaultOptions,
                                     callbacks: configuration.webhooks?.policy)
        let id = key.map { Self.taskID(token: caller.name, key: $0) }
        let receipt = try await Self.broker { try await caller.producer.submitDetached(batch: [task.submission(id: id)]) }[0]
        if let refusal = receipt.refusal { throw Self.refusal(refusal) }
        return JSONResponse.make(.accepted, #"{"id":"# + JSONText.quoted(receipt.id) + #","status":"accepted"}"#)
    }

    func submitBatch(_ request: Request) async throws -> Response {
        let caller = try authorize(request, .submit)
        let key = try Self.idempotencyKey(request)
        let fields = try SubmitRequest.checked(try SubmitRequest.body(try await body(request)), known: ["tasks"], at: "")
        guard let list = fields["tasks"], list.first == UInt8(ascii: "[") else {
            throw APIError.badField("tasks", "required: an array of 1-\(configuration.maxBatch) tasks, each {\"name\", \"args\", \"options\"}")
        }
        let items = try JSONObjectScanner.items(list)
        guard !items.isEmpty, items.count <= configuration.maxBatch else {
            throw APIError.badField("tasks", "must hold 1-\(configuration.maxBatch) tasks, not \(items.count)")
        }
        // Every item is checked before any is sent: a malformed one fails the whole batch (400,
        // naming it), so a client never has to find out which half of a bad batch went through.
        var submissions: [TaskSubmission] = []
        for (index, item) in items.enumerated() {
            guard item.first == UInt8(ascii: "{") else { throw APIError.badField("tasks[\(index)]", "must be an object") }
            let members: [JSONObjectScanner.Member]
            do { members = try JSONObjectScanner.members(item) } catch { throw APIError.badField("tasks[\(index)]", "must be an object") }
            let task = try SubmitRequest(members: members, at: "tasks[\(index)]", defaults: Self.defaultOptions,
                                         callbacks: configuration.webhooks?.policy)
            submissions.append(task.submission(id: key.map { Self.taskID(token: caller.name, key: $0, index: index) }))
        }
        var results: [String] = []
        results.reserveCapacity(items.count)
        var accepted = 0
        let receipts = try await Self.broker { try await caller.producer.submitDetached(batch: submissions) }
        for (index, receipt) in receipts.enumerated() {
            if let refusal = receipt.refusal {
                results.append(Self.itemJSON(index, error: Self.refusal(refusal)))
            } else {
                accepted += 1
                results.append(#"{"index":\#(index),"id":"# + JSONText.quoted(receipt.id) + #","status":"accepted"}"#)
            }
        }
        return JSONResponse.make(.ok, #"{"accepted":\#(accepted),"results":["# + results.joined(separator: ",") + "]}")
    }

    static func itemJSON(_ index: Int, error: APIError) -> String {
        #"{"index":\#(index),"status":"rejected","# + error.json.dropFirst()
    }

    /// The answer for a task the broker refused (or did not answer), with its reason.
    static func refusal(_ result: TaskResult) -> APIError {
        let reason = result.errorMessage ?? result.body.text
        switch result.status {
        case .timeout: return APIError(.gatewayTimeout, "broker_timeout", "the broker did not answer: \(reason)")
        case .rejected:
            if result.errorKind == .unknownTask || reason.contains("consumer serves") {
                return APIError(.unprocessableContent, "unknown_task", "name: \(reason)")
            }
            if reason.contains("held by another task") { return APIError(.conflict, "id_conflict", "Idempotency-Key: \(reason)") }
            if reason.contains("full") || reason.contains("share") {
                var error = APIError(.serviceUnavailable, "queue_full", reason)
                error.headers[.retryAfter] = "1"
                return error
            }
            if reason.contains("args") || reason.contains("size") { return APIError(.unprocessableContent, "rejected", "args: \(reason)") }
            return APIError(.unprocessableContent, "rejected", reason)
        default: return APIError(.badGateway, "broker_error", reason)
        }
    }
}
