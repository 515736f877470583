public import Hummingbird
import ConveyorProtocol

/// An error answer: `{"error": {"code", "message"}}` with its HTTP status (docs/GATEWAY.md,
/// "Errors"). The message names the field that is wrong, when one is.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    /// A stable word for programs: `bad_json`, `unknown_field`, `invalid_field`, ...
    public let code: String
    public let message: String
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// The error's body (also one item of a batch's results).
    var json: String {
        #"{"error":{"code":"# + JSONText.quoted(code) + #","message":"# + JSONText.quoted(message) + "}}"
    }

    var response: Response { JSONResponse.make(status, json, headers: headers) }

    static func badField(_ field: String, _ message: String) -> APIError {
        APIError(.badRequest, "invalid_field", "\(field): \(message)")
    }
}

/// JSON responses from text made by hand (keys in a fixed order, no encoder on the hot path).
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status, _ json: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        var buffer = ByteBuffer()
        buffer.writeString(json)
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: buffer))
    }

    static func make(_ status: HTTPResponse.Status, bytes: [UInt8]) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
    }
}
