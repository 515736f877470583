import ConveyorProtocol
import Instrumentation
import Logging

/// A task's trace context (docs/PROTOCOL.md §6.1, `traceparent` and `tracestate`): the caller's
/// own in ``TaskOptions/traceparent``, or else the one that swift-distributed-tracing's
/// bootstrapped instrument (swift-otel's W3C propagator, say) injects from the caller's current
/// `ServiceContext`. With no current context (or the default no-op instrument) nothing is asked of
/// the instrument and nothing is added: one task-local read per call, not per task.
extension Producer {
    /// `submissions`, those without a trace context of their own given the caller's current one.
    /// A value the instrument injects that is not a valid W3C one is left out (logged at debug):
    /// a tracing bug should not fail the work.
    func withCurrentTraceContext(_ submissions: [TaskSubmission]) -> [TaskSubmission] {
        guard let context = ServiceContext.current else { return submissions }
        var carrier = TraceCarrier()
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: TraceCarrierInjector())
        guard let traceparent = carrier.traceparent else { return submissions }
        if let problem = TraceContextFormat.problem(traceparent: traceparent) {
            logger.debug("injected traceparent left out: not a W3C traceparent", metadata: [
                "traceparent": "\(traceparent.prefix(80))", "error": "\(problem)",
            ])
            return submissions
        }
        var tracestate = carrier.tracestate
        if let state = tracestate, let problem = TraceContextFormat.problem(tracestate: state) {
            logger.debug("injected tracestate left out: not a W3C tracestate", metadata: ["error": "\(problem)"])
            tracestate = nil
        }
        var traced = submissions
        for index in traced.indices where traced[index].options.traceparent == nil && traced[index].options.tracestate == nil {
            traced[index].options.traceparent = traceparent
            traced[index].options.tracestate = tracestate
        }
        return traced
    }

    /// The refusal of a task whose options cannot be sent (``TaskOptions/problem``: a trace context
    /// the caller gave that is not valid), or `nil` to send it. Only options with a trace context
    /// are looked at: for the others this is two `nil` checks.
    @inline(__always)
    static func refusal(of options: TaskOptions, id: String) -> Outcome? {
        guard options.traceparent != nil || options.tracestate != nil, let problem = options.problem else { return nil }
        let reason = "options: \(problem)"
        return Outcome(result: TaskResult(id: id, status: .rejected, kind: .rejected, message: reason),
                       acceptError: ProducerError.rejected(id: id, reason: reason))
    }
}

/// What an instrument injects into: the two W3C Trace Context headers.
struct TraceCarrier: Sendable {
    var traceparent: String?
    var tracestate: String?
}

/// Takes the W3C header names (`traceparent`, `tracestate`, in any case) into a ``TraceCarrier``,
/// and nothing else an instrument may inject (baggage, a vendor's own headers).
struct TraceCarrierInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout TraceCarrier) {
        switch key.lowercased() {
        case "traceparent": carrier.traceparent = value
        case "tracestate": carrier.tracestate = value
        default: break
        }
    }
}
