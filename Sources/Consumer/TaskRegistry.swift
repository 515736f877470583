public import ConveyorProtocol
import ConveyorSystem
import Foundation

/// Thrown by a handler wrapper when a task's input is unusable, or by a handler whose failure a
/// retry would not mend: the result is an `error` of the given kind, and the task is not retried
/// (any other error a handler throws is retried while attempts are left).
public struct TaskInputError: Error, CustomStringConvertible {
    public let kind: ErrorKind
    public let message: String
    public var description: String { message }

    public init(kind: ErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }
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
    typealias AsyncHandler = @Sendable (RawJSON, TaskContext) async throws -> RawJSON
    private(set) var handlers: [String: Handler] = [:]
    /// `async` handlers: run as Swift tasks, so they hold no worker thread while they wait.
    private(set) var asyncHandlers: [String: AsyncHandler] = [:]

    public init() {}

    /// The names served, sorted.
    public var names: [String] { Set(handlers.keys).union(asyncHandlers.keys).sorted() }

    /// Registers a handler whose arguments and result are Codable. Arguments that do not decode
    /// give an `error` result (`bad_args`) that names the field at fault; a thrown error gives an
    /// `error` result (`handler_error`) carrying the error's text.
    public mutating func register<Args: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        _ handler: @escaping @Sendable (Args, TaskContext) throws -> Output
    ) {
        asyncHandlers[name] = nil
        handlers[name] = { json, context in
            try Self.encode(try handler(try Self.decode(Args.self, json, for: name), context))
        }
    }

    /// Registers an `async` handler whose arguments and result are Codable. It runs as a Swift
    /// task, not on a worker thread: while it awaits (a download, a database), the consumer's
    /// threads run other tasks. Errors as for the synchronous form.
    ///
    /// How many run at once is what the broker sends: threads plus prefetch. Give a consumer of
    /// slow `async` tasks a fixed prefetch of the concurrency you want (`--prefetch 100`,
    /// ``ConsumerConfiguration/prefetch``): the automatic one sizes the buffer for threads that
    /// are busy, and keeps it small for slow tasks. The stuck-handler watchdog does not watch
    /// `async` handlers (they hold no thread); the broker's deadline still ends such a task, and
    /// `STATUS` may call one `reserved` that has started (it counts the consumer's threads).
    ///
    /// ```swift
    /// registry.register("fetch") { (args: Fetch.Args, context) async throws -> Fetch.Output in
    ///     try await fetcher.fetch(args.url)
    /// }
    /// ```
    public mutating func register<Args: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        _ handler: @escaping @Sendable (Args, TaskContext) async throws -> Output
    ) {
        handlers[name] = nil
        asyncHandlers[name] = { json, context in
            try Self.encode(try await handler(try Self.decode(Args.self, json, for: name), context))
        }
    }

    /// Registers the handler of a ``TaskDefinition``: its name, `Args` and `Output` come from the
    /// type, which a producer's ``submit`` uses too, so the two sides cannot disagree.
    public mutating func register<Definition: TaskDefinition>(
        _ definition: Definition.Type,
        _ handler: @escaping @Sendable (Definition.Args, TaskContext) throws -> Definition.Output
    ) {
        register(Definition.name, handler)
    }

    /// Registers the `async` handler of a ``TaskDefinition``.
    public mutating func register<Definition: TaskDefinition>(
        _ definition: Definition.Type,
        _ handler: @escaping @Sendable (Definition.Args, TaskContext) async throws -> Definition.Output
    ) {
        register(Definition.name, handler)
    }

    private static func decode<Args: Decodable>(_ type: Args.Type, _ json: RawJSON, for name: String) throws -> Args {
        do {
            return try JSONDecoder().decode(Args.self, from: Data(json.bytes))
        } catch let error as DecodingError {
            throw TaskInputError(kind: .badArgs, message: "args for '\(name)' do not decode to \(Args.self): \(describe(error))")
        } catch {
            throw TaskInputError(kind: .malformedJSON, message: "args for '\(name)' are not valid JSON: \(error)")
        }
    }

    private static func encode<Output: Encodable>(_ output: Output) throws -> RawJSON {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return RawJSON(bytes: Array(try encoder.encode(output)))
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
        asyncHandlers[name] = nil
        handlers[name] = handler
    }

    /// Registers an `async` handler that takes and returns JSON text (the consumer checks both).
    public mutating func registerRaw(_ name: String, _ handler: @escaping @Sendable (RawJSON, TaskContext) async throws -> RawJSON) {
        handlers[name] = nil
        asyncHandlers[name] = handler
    }

    /// The synchronous handler of `name`, if it has one.
    func handler(named name: String) -> Handler? { handlers[name] }

    /// The `async` handler of `name`, if it has one.
    func asyncHandler(named name: String) -> AsyncHandler? { asyncHandlers[name] }
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
