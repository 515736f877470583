@testable import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import Foundation
import Instrumentation
import Logging
import Synchronization
import TestSupport
import Testing
import ZeroMQ

/// A task's trace context on the consumer: from the DISPATCH meta into the handler's
/// ``TaskContext``, its logger and the consumer's lines about the task, and the `ServiceContext`
/// the handler runs in.
@Suite("Trace context in the consumer", .serialized)
struct TraceContextConsumerTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

    @Test("The context's logger carries trace.id and traceparent when the task has them, and nothing more when not")
    func contextLogger() {
        let traced = TaskContext(taskID: "t", name: "n", attempt: 1, threadIndex: 0, deadline: .now,
                                 traceparent: Self.parent, tracestate: "rojo=1")
        #expect(traced.traceID == Self.traceID)
        #expect(traced.logger[metadataKey: "trace.id"] == "\(Self.traceID)")
        #expect(traced.logger[metadataKey: "traceparent"] == "\(Self.parent)")
        #expect(traced.withTraceID(["task.id": "t"]) == ["task.id": "t", "trace.id": "\(Self.traceID)"])
        let plain = TaskContext(taskID: "t", name: "n", attempt: 1, threadIndex: 0, deadline: .now)
        #expect(plain.traceID == nil && plain.logger[metadataKey: "trace.id"] == nil)
        #expect(plain.withTraceID(["task.id": "t"]) == ["task.id": "t"])
    }

    @Test("The built-in trace task returns the context's trace fields, {} without them")
    func traceTask() throws {
        let handler = try #require(BuiltinTasks.registry.handler(named: "trace"))
        let traced = TaskContext(taskID: "t", name: "trace", attempt: 1, threadIndex: 0, deadline: .now + .seconds(60),
                                 traceparent: Self.parent, tracestate: "rojo=1")
        #expect(try handler(RawJSON("{}"), traced).text
                    == #"{"trace_id":"\#(Self.traceID)","traceparent":"\#(Self.parent)","tracestate":"rojo=1"}"#)
        let plain = TaskContext(taskID: "t", name: "trace", attempt: 1, threadIndex: 0, deadline: .now + .seconds(60))
        #expect(try handler(RawJSON("{}"), plain).text == "{}")
    }

    @Test("A traceparent in DISPATCH reaches the handler's context, its ServiceContext (sync and async), and the consumer's task lines")
    func dispatchedTrace() throws {
        TestInstrument.install()
        var registry = BuiltinTasks.registry
        registry.register("seen-sync") { (_: BuiltinTasks.TraceArgs, _: TaskContext) -> String in
            ServiceContext.current?[TestTraceKey.self] ?? "none"
        }
        registry.register("seen-async") { (_: BuiltinTasks.TraceArgs, _: TaskContext) async -> String in
            await Task.yield()
            return ServiceContext.current?[TestTraceKey.self] ?? "none"
        }
        let lines = CapturedLines()
        var logger = Logger(label: "trace-tests") { _ in CapturingHandler(lines: lines) }
        logger.logLevel = .debug
        let broker = try FakeBroker()
        var configuration = ConsumerConfiguration()
        configuration.backend = broker.endpoint
        configuration.threads = 2
        configuration.prefetch = .fixed(2)
        configuration.heartbeatInterval = .seconds(5)
        configuration.liveness = 12
        let consumer = RunningConsumer(Consumer(configuration: configuration, registry: registry, logger: logger))
        defer { consumer.stop() }
        let peer = try #require(try broker.expect(.ready).routingID).bytes

        var message = OutgoingMessage(to: Message(peer), .dispatch)
        for (id, name, traced) in [("t-1", "trace", true), ("t-2", "seen-sync", true), ("t-3", "seen-async", true),
                                   ("t-4", "seen-sync", false)] {
            message.append(id)
            message.append(name)
            message.append(Array("{}".utf8))
            message.append(DispatchMeta(attempt: 1, timeoutMilliseconds: 10_000, traceparent: traced ? Self.parent : nil,
                                        tracestate: traced ? "rojo=1" : nil).encoded(for: .current))
        }
        try message.send(on: broker.router)
        let results = try broker.results(count: 4)
        #expect(results["t-1"]?.bodyText == #"{"trace_id":"\#(Self.traceID)","traceparent":"\#(Self.parent)","tracestate":"rojo=1"}"#)
        #expect(results["t-2"]?.bodyText == #""\#(Self.parent)""#, "a sync handler runs in the extracted ServiceContext")
        #expect(results["t-3"]?.bodyText == #""\#(Self.parent)""#, "so does an async one")
        #expect(results["t-4"]?.bodyText == #""none""#, "no trace, nothing extracted")

        for id in ["t-1", "t-2", "t-3"] {
            for message in ["task started", "task succeeded"] {
                let line = lines.first { $0.message == message && $0.metadata["task.id"] == "\(id)" }
                #expect(line?.metadata["trace.id"] == "\(Self.traceID)", "\(message) \(id): \(String(describing: line))")
            }
        }
        let untraced = lines.first { $0.message == "task succeeded" && $0.metadata["task.id"] == "t-4" }
        #expect(untraced != nil && untraced?.metadata["trace.id"] == nil)
    }
}

/// Log lines kept for a test to read.
final class CapturedLines: Sendable {
    struct Line: Sendable {
        let message: String
        let metadata: Logger.Metadata
    }

    private let lines = Mutex<[Line]>([])

    func append(_ line: Line) { lines.withLock { $0.append(line) } }

    func first(where matches: (Line) -> Bool) -> Line? { lines.withLock { $0.first(where: matches) } }
}

/// A log handler that keeps every line in a ``CapturedLines``.
struct CapturingHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append(.init(message: "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}
