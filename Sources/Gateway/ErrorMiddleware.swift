public import Hummingbird

/// Turns every error into the gateway's JSON error body: Hummingbird's own (no such route, a body
/// over the limit) too, so that no answer is plain text. A known path asked with a method it does
/// not serve gets 405 with `Allow`.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods of each route (the `{id}` route matches any other `/v1/tasks/X`).
    static func allowed(_ path: String) -> [String]? {
        switch path {
        case "/v1/tasks": ["GET", "POST"]
        case "/v1/tasks/batch": ["POST"]
        case "/v1/stats", "/healthz", "/openapi.json": ["GET"]
        default:
            path.hasPrefix("/v1/tasks/") && !path.dropFirst(10).contains("/") && path.count > 10 ? ["GET", "DELETE"] : nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                if let methods = Self.allowed(request.uri.path), !methods.contains(request.method.rawValue) {
                    var answer = APIError(.methodNotAllowed, "method_not_allowed",
                                          "\(request.method.rawValue) \(request.uri.path): this path serves \(methods.joined(separator: ", "))")
                    answer.headers[.allow] = methods.joined(separator: ", ")
                    return answer.response
                }
                return APIError(.notFound, "not_found", "\(request.uri.path): no such route; GET /openapi.json lists them").response
            case .contentTooLarge:
                return APIError(.contentTooLarge, "body_too_large", "the body is over the gateway's limit (--max-body-bytes)").response
            default:
                return APIError(error.status, "http_error", error.body ?? error.status.reasonPhrase).response
            }
        } catch {
            return APIError(.internalServerError, "internal", "\(error)").response
        }
    }
}
