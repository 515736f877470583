public import ConveyorProtocol
import Foundation

/// A submitted task of a ``TaskDefinition``: its result comes back typed.
public struct TypedTaskHandle<Definition: TaskDefinition>: Sendable {
    /// The untyped handle: status, cancel, the raw result.
    public let handle: TaskHandle

    public var id: String { handle.id }
    public var isDone: Bool { handle.isDone }
    public func cancel() async throws -> CancelOutcome { try await handle.cancel() }
    public func status() async throws -> TaskStatusReport { try await handle.status() }
    /// The task's result as it came (any status).
    public func result() async -> TaskResult { await handle.result() }

    /// The task's output, decoded.
    /// - Throws: ``ProducerError/taskFailed(_:)`` when the task did not succeed (the result says
    ///   why), ``ProducerError/undecodableResult(_:)`` when its result is not a `Definition.Output`.
    public func value() async throws -> Definition.Output { try await handle.result(as: Definition.Output.self) }
}

extension Producer {
    /// Submits a task of `definition` with `args`: its name and the types come from the
    /// definition the consumer registered too.
    ///
    /// ```swift
    /// let handle = try await producer.submit(Resize.self, .init(url: url, width: 200))
    /// let output = try await handle.value()   // a Resize.Output
    /// ```
    public func submit<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ args: Definition.Args, options: TaskOptions = .default, id: String? = nil
    ) async throws -> TypedTaskHandle<Definition> {
        TypedTaskHandle(handle: try await submit(Definition.name, args, options: options, id: id))
    }

    /// Submits a task of `definition` and waits for its output: the shortest round trip, typed.
    /// - Throws: as ``TypedTaskHandle/value()``, and as ``run(_:json:options:id:)``.
    public func run<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ args: Definition.Args, options: TaskOptions = .default, id: String? = nil
    ) async throws -> Definition.Output {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = RawJSON(bytes: Array(try encoder.encode(args)))
        let result = try await run(Definition.name, json: json, options: options, id: id)
        guard result.status == .ok else { throw ProducerError.taskFailed(result) }
        do {
            return try JSONDecoder().decode(Definition.Output.self, from: Data(result.body.bytes))
        } catch {
            throw ProducerError.undecodableResult("result of task \(result.id) does not decode to \(Definition.Output.self): \(error)")
        }
    }
}
