public import Logging

/// Runs a ``Producer`` for the length of `body`: the producer's service runs in a child task, and
/// is shut down (``Producer/beginGracefulShutdown()``) when `body` returns or throws, its loop
/// gone before this returns. In the style of grpc-swift-2's `withGRPCClient`.
///
/// ```swift
/// let result = try await withProducer(.init(broker: endpoint), logger: logger) { producer in
///     try await producer.run("echo", json: "[1]")
/// }
/// ```
///
/// Tasks still without a result when `body` returns end with an `error` result, as at any
/// shutdown: wait for what you need inside `body`.
/// - Throws: what `body` throws; otherwise what the producer's ``Producer/run()`` threw (its socket
///   could not be made or connected), which also ends the calls `body` is waiting on.
public func withProducer<Value>(
    _ configuration: ProducerConfiguration,
    logger: Logger,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Producer) async throws -> Value
) async throws -> Value {
    let producer = Producer(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self, returning: Value.self) { group in
        group.addTask { try await producer.run() }
        let result: Value
        do {
            result = try await body(producer)
        } catch {
            producer.beginGracefulShutdown()
            do {
                try await group.waitForAll()
            } catch let loopError where error as? ProducerError == .closed {
                // The loop failed first, which closed the producer under `body`: say why.
                throw loopError
            } catch {}
            throw error
        }
        producer.beginGracefulShutdown()
        try await group.waitForAll()
        return result
    }
}
