public import ConveyorProtocol
import ConveyorSystem
import Foundation

/// What a handler knows about the task it runs.
public struct TaskContext: Sendable {
    public let taskID: String
    public let name: String
    /// 1 for the first attempt.
    public let attempt: Int
    /// Index of the worker thread running the handler.
    public let threadIndex: Int
    /// When the task's time runs out; a long handler should check ``isPastDeadline``.
    public let deadline: ContinuousClock.Instant

    /// Whether the task's time limit has passed: the cooperative cancellation flag. Threads
    /// cannot be killed safely, so long handlers check this and stop early.
    public var isPastDeadline: Bool { ContinuousClock.now >= deadline }
}

/// Thrown by a handler wrapper when a task's input is unusable: the result is an `error` of the
/// given kind, and the task is not retried.
public struct TaskInputError: Error, CustomStringConvertible {
    public let kind: ErrorKind
    public let message: String
    public var description: String { message }
}

/// The task handlers a consumer serves, by name.
///
/// ```swift
/// var registry = TaskRegistry()
/// registry.register("thumbnail") { (args: Thumbnail.Args) in try Thumbnail.make(args) }
/// registry.registerRaw("echo") { json, _ in json }
/// ```
public struct TaskRegistry: Sendable {
    typealias Handler = @Sendable (RawJSON, TaskContext) throws -> RawJSON
    private(set) var handlers: [String: Handler] = [:]

    public init() {}

    /// The names served, sorted.
    public var names: [String] { handlers.keys.sorted() }

    /// Registers a handler whose arguments and result are Codable. Arguments that do not decode
    /// give an `error` result (`bad_args`) that names the field at fault; a thrown error gives an
    /// `error` result (`handler_error`) carrying the error's text.
    public mutating func register<Args: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        _ handler: @escaping @Sendable (Args, TaskContext) throws -> Output
    ) {
        handlers[name] = { json, context in
            let args: Args
            do {
                args = try JSONDecoder().decode(Args.self, from: Data(json.bytes))
            } catch let error as DecodingError {
                throw TaskInputError(kind: .badArgs, message: "args for '\(name)' do not decode to \(Args.self): \(describe(error))")
            } catch {
                throw TaskInputError(kind: .malformedJSON, message: "args for '\(name)' are not valid JSON: \(error)")
            }
            let output = try handler(args, context)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return RawJSON(bytes: Array(try encoder.encode(output)))
        }
    }

    /// Registers a Codable handler that does not need its ``TaskContext``.
    public mutating func register<Args: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        _ handler: @escaping @Sendable (Args) throws -> Output
    ) {
        register(name) { (args: Args, _: TaskContext) in try handler(args) }
    }

    /// Registers a handler that takes and returns JSON text. The consumer checks that the args are
    /// valid JSON before calling it, and that what it returns is valid JSON.
    public mutating func registerRaw(_ name: String, _ handler: @escaping @Sendable (RawJSON, TaskContext) throws -> RawJSON) {
        handlers[name] = handler
    }

    func handler(named name: String) -> Handler? { handlers[name] }
}

/// A decoding error in words: which field, and what was wrong with it.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let text = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
        return text.isEmpty ? "the top level" : "field '\(text.hasPrefix(".") ? String(text.dropFirst()) : text)'"
    }
    switch error {
    case .keyNotFound(let key, let context):
        let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
        return "missing field '\(key.stringValue)'\(parent)"
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)): expected \(type)"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)): expected \(type), found null"
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty { return "not valid JSON" }
        return "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
