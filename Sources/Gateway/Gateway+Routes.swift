import ConveyorProducer
import ConveyorProtocol
import Hummingbird

extension Gateway {
    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in JSONResponse.make(.ok, #"{"status":"ok"}"#) }
        router.get("/openapi.json") { _, _ in JSONResponse.make(.ok, bytes: OpenAPIDocument.bytes) }
        router.post("/v1/tasks") { request, _ in try await self.submit(request) }
        router.post("/v1/tasks/batch") { request, _ in try await self.submitBatch(request) }
        router.get("/v1/tasks") { request, _ in try await self.list(request) }
        router.get("/v1/tasks/{id}") { request, context in
            try await self.show(request, id: try Self.taskID(context.parameters.get("id")))
        }
        router.delete("/v1/tasks/{id}") { request, context in
            try await self.cancel(request, id: try Self.taskID(context.parameters.get("id")))
        }
        router.get("/v1/stats") { request, _ in
            let caller = try self.authorize(request, .read)
            let json = try await Self.broker { try await caller.producer.statsJSON() }
            return JSONResponse.make(.ok, bytes: Array(#"{"broker":"#.utf8) + json.bytes + [UInt8(ascii: "}")])
        }
    }

    /// A task id from a path: 1-255 characters of visible ASCII, as the broker takes them.
    static func taskID(_ text: String?) throws(APIError) -> String {
        guard let text, !text.isEmpty, text.utf8.count <= Limits.maxIdentifierBytes,
              text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError.badField("id", "a task id is 1-\(Limits.maxIdentifierBytes) characters of visible ASCII")
        }
        return text
    }

    /// The request's body, at most `--max-body-bytes` (413 past it, said before reading when
    /// `Content-Length` already tells).
    func body(_ request: Request) async throws -> [UInt8] {
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError(.contentTooLarge, "body_too_large", "the body is \(length) bytes, over the gateway's limit of \(limit) (--max-body-bytes)")
        }
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "body_too_large", "the body is over the gateway's limit of \(limit) bytes (--max-body-bytes)")
        }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// Runs a broker request, its failures turned into answers: 503 while the broker cannot be
    /// reached or the gateway stops, 504 when it does not answer in time, 502 otherwise.
    static func broker<T>(_ body: () async throws -> T) async throws(APIError) -> T {
        do {
            return try await body()
        } catch let error as ProducerError {
            throw answer(error)
        } catch {
            throw APIError(.badGateway, "broker_error", "\(error)")
        }
    }

    static func answer(_ error: ProducerError) -> APIError {
        switch error {
        case .closed: APIError(.serviceUnavailable, "shutting_down", "the gateway is shutting down")
        case .unreachable(let text): APIError(.serviceUnavailable, "broker_unavailable", text)
        case .brokerTimeout: APIError(.gatewayTimeout, "broker_timeout", "\(error)")
        case .protocolError(let text): APIError(.unprocessableContent, "refused", "the broker refused the request: \(text)")
        case .refused(let text): APIError(.forbidden, "broker_refused", "the broker refused the gateway: \(text)")
        default: APIError(.badGateway, "broker_error", "\(error)")
        }
    }
}
