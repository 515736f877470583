/// One kind of task, defined once and used by both sides: its name, its arguments and its result.
/// A producer submits it with `producer.submit(Resize.self, args)` and a consumer serves it with
/// `registry.register(Resize.self) { args, context in … }`, so the two cannot disagree on the name
/// or the types (in the spirit of Vapor Queues' `AsyncJob`). Put the definitions in a module both
/// the producer and the worker import.
///
/// ```swift
/// enum Resize: TaskDefinition {
///     static let name = "resize"
///     struct Args: Codable, Sendable { let url: String; let width: Int }
///     struct Output: Codable, Sendable { let path: String }
/// }
/// ```
public protocol TaskDefinition {
    /// What the task is given (encoded as its JSON args).
    associatedtype Args: Codable & Sendable
    /// What it returns (its JSON result).
    associatedtype Output: Codable & Sendable
    /// The task name on the wire (1–255 bytes of visible ASCII).
    static var name: String { get }
}
