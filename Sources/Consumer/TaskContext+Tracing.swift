import Instrumentation

/// A handler runs inside the `ServiceContext` that the app's instrument (swift-distributed-tracing's
/// `InstrumentationSystem`, e.g. swift-otel's W3C propagator) extracts from the task's trace
/// context, so the spans it starts are children of the submitting request's. Without a
/// `traceparent` nothing is extracted and the handler runs as before: no task-local binding, no
/// call into the instrument.
extension TaskContext {
    /// Runs `body` (a synchronous handler) inside the task's `ServiceContext`.
    func withServiceContext<T>(_ body: () throws -> T) rethrows -> T {
        guard traceparent != nil else { return try body() }
        return try ServiceContext.withValue(extractedServiceContext(), operation: body)
    }

    /// Runs `body` (an `async` handler) inside the task's `ServiceContext`.
    func withServiceContext<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async rethrows -> T {
        guard traceparent != nil else { return try await body() }
        return try await ServiceContext.withValue(extractedServiceContext(), isolation: isolation, operation: body)
    }

    /// The current `ServiceContext` (or a top-level one) with what the bootstrapped instrument
    /// extracts from ``traceparent`` and ``tracestate``.
    private func extractedServiceContext() -> ServiceContext {
        var context = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(self, into: &context, using: TraceContextExtractor())
        return context
    }
}

/// Reads the W3C header names (`traceparent`, `tracestate`, in any case, as instruments ask for
/// HTTP headers) from a ``TaskContext``.
struct TraceContextExtractor: Extractor {
    func extract(key: String, from carrier: TaskContext) -> String? {
        switch key.lowercased() {
        case "traceparent": carrier.traceparent
        case "tracestate": carrier.tracestate
        default: nil
        }
    }
}
