import ConveyorProducer
import ConveyorProtocol
import Foundation
import Hummingbird

extension Gateway {
    /// `GET /v1/tasks/{id}[?wait=S]`: where the task stands; with `wait`, asks again (every 20 ms
    /// at first, then less often, up to every 250 ms) until it is done or the wait is over.
    func show(_ request: Request, id: String) async throws -> Response {
        let caller = try authorize(request, .read)
        var wait = 0.0
        if let text = request.uri.queryParameters.get("wait") {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 0, seconds <= configuration.maxWaitSeconds else {
                throw APIError.badField("wait", "must be a number of seconds from 0 to \(Int(configuration.maxWaitSeconds)), not \(text.prefix(40))")
            }
            wait = seconds
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        var pause = Duration.milliseconds(20)
        while true {
            let report = try await Self.broker { try await caller.producer.status(id: id) }
            if report.state == .unknown {
                throw APIError(.notFound, "not_found", "id: the broker holds no task \(id) (never submitted, or its result is past retention)")
            }
            if report.state == .done || ContinuousClock.now + pause > deadline {
                return JSONResponse.make(.ok, Self.json(report))
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(250))
        }
    }

    static func json(_ report: TaskStatusReport) -> String {
        let state: String = switch report.state {
        case .queued, .scheduled, .running, .reserved, .done: report.state.rawValue
        default: "other"
        }
        var parts = [#""id":"# + JSONText.quoted(report.id), #""state":"# + JSONText.quoted(state)]
        if let due = report.dueAt { parts.append(#""due_at":\#(due)"#) }
        if let result = report.result {
            parts.append(#""status":"# + JSONText.quoted(result.status.rawValue))
            if result.status == .ok {
                parts.append(#""result":"# + result.body.text)
            } else {
                parts.append(#""error":{"kind":"# + JSONText.quoted(result.errorKind?.rawValue ?? "unknown")
                             + #","message":"# + JSONText.quoted(result.errorMessage ?? result.body.text) + "}")
            }
            if let info = result.info {
                var worker: [String] = []
                if let host = info.host { worker.append(#""host":"# + JSONText.quoted(host)) }
                if let pid = info.pid { worker.append(#""pid":\#(pid)"#) }
                if let thread = info.thread { worker.append(#""thread":\#(thread)"#) }
                if let process = info.process { worker.append(#""process":\#(process)"#) }
                if !worker.isEmpty { parts.append(#""worker":{"# + worker.joined(separator: ",") + "}") }
                if let attempts = info.attempts { parts.append(#""attempts":\#(attempts)"#) }
                if let elapsed = info.elapsedMilliseconds, elapsed.isFinite { parts.append(#""elapsed_ms":\#(elapsed)"#) }
            }
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// `DELETE /v1/tasks/{id}`: 200 when the task was cancelled; 409 when it runs or has finished
    /// (a running task cannot be stopped); 404 when the broker holds no such task.
    func cancel(_ request: Request, id: String) async throws -> Response {
        let caller = try authorize(request, .submit)
        let outcome = try await Self.broker { try await caller.producer.cancel(id: id) }
        switch outcome {
        case .cancelled:
            return JSONResponse.make(.ok, #"{"id":"# + JSONText.quoted(id) + #","outcome":"cancelled"}"#)
        case .running:
            throw APIError(.conflict, "running", "id: task \(id) is running on a consumer and cannot be cancelled; it finishes there")
        case .done:
            throw APIError(.conflict, "finished", "id: task \(id) had already finished; GET /v1/tasks/\(id) has its result")
        case .unknown:
            throw APIError(.notFound, "not_found", "id: the broker holds no task \(id)")
        case .unrecognized:
            throw APIError(.badGateway, "broker_error", "the broker answered the cancel with an outcome this gateway does not know")
        }
    }

    /// `GET /v1/tasks?state=&name=&since_ms=&limit=&cursor=`: one page of the broker's listing.
    func list(_ request: Request) async throws -> Response {
        let caller = try authorize(request, .read)
        let parameters = request.uri.queryParameters
        let known: Set<String> = ["state", "name", "since_ms", "limit", "cursor"]
        for (key, _) in parameters where !known.contains(String(key)) {
            throw APIError(.badRequest, "unknown_field", "\(key): unknown query parameter; known ones are cursor, limit, name, since_ms, state")
        }
        var query = TaskQuery()
        if let state = parameters.get("state") {
            let value = TaskListState(rawValue: state)
            guard TaskListState.all.contains(value) else {
                throw APIError.badField("state", "must be one of \(TaskListState.all.map(\.rawValue).joined(separator: ", "))")
            }
            query.state = value
        }
        if let name = parameters.get("name") {
            guard !name.isEmpty, name.utf8.count <= Limits.maxIdentifierBytes, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw APIError.badField("name", "must be 1-\(Limits.maxIdentifierBytes) characters of visible ASCII, as task names are")
            }
            query.name = name
        }
        if let text = parameters.get("since_ms") {
            guard let ms = Int64(text), ms >= 0 else { throw APIError.badField("since_ms", "must be a whole number of milliseconds since the Unix epoch, 0 or more") }
            query.sinceMilliseconds = ms
        }
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...TaskQuery.maxLimit).contains(limit) else {
                throw APIError.badField("limit", "must be a whole number from 1 to \(TaskQuery.maxLimit)")
            }
            query.limit = limit
        }
        if let cursor = parameters.get("cursor") {
            guard !cursor.isEmpty, cursor.utf8.count <= 1024 else { throw APIError.badField("cursor", "must be the next_cursor of the previous page") }
            query.cursor = cursor
        }
        let page = try await Self.broker { try await caller.producer.tasks(query) }
        return JSONResponse.make(.ok, page.json)
    }
}
