public import Instrumentation

/// Where ``TestInstrument`` keeps a trace in a `ServiceContext`: the `traceparent` text itself.
public enum TestTraceKey: ServiceContextKey {
    public typealias Value = String
}

/// A stand-in for a W3C propagator (swift-otel's, say), for tests of the producer's injection and
/// the consumer's extraction: `inject` writes the context's ``TestTraceKey`` as `traceparent` (and
/// `tracestate` = `test=1`), `extract` reads `traceparent` back into it. A context without the
/// key injects nothing, so a test process may bootstrap it once (``install()``) and its other
/// tests, which set no such context, see no difference.
public struct TestInstrument: Instrument {
    public func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract: Extractor, Extract.Carrier == Carrier {
        if let value = extractor.extract(key: "traceparent", from: carrier) { context[TestTraceKey.self] = value }
    }

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        guard let value = context[TestTraceKey.self] else { return }
        injector.inject(value, forKey: "traceparent", into: &carrier)
        injector.inject("test=1", forKey: "tracestate", into: &carrier)
    }

    /// Bootstraps `InstrumentationSystem` with a ``TestInstrument``, once per process (a second
    /// bootstrap would crash it), whichever test asks first.
    public static func install() { _ = installed }

    private static let installed: Void = { InstrumentationSystem.bootstrap(TestInstrument()) }()

    /// A `ServiceContext` holding `traceparent` for this instrument to inject.
    public static func context(traceparent: String) -> ServiceContext {
        var context = ServiceContext.topLevel
        context[TestTraceKey.self] = traceparent
        return context
    }
}
