import ConveyorProcess
import ConveyorProducer
import ConveyorTesting
import Foundation
import Instrumentation
import TestSupport
import Testing

/// A W3C trace context from the producer to the handler (issue 15, "See what it is doing"): given
/// at submit or taken from the caller's `ServiceContext`, kept by the broker through a restart,
/// handed to the handler (the built-in `trace` task echoes it) and logged by the consumer.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TraceContextTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

    /// The JSON object of an `ok` result, or of a log line.
    static func object(_ text: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }

    @Test("a traceparent given at submit reaches the handler's context, through a broker restart, and the consumer's task failed line carries trace.id")
    func reachesTheHandler() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let producer = try cluster.makeProducer()
            let options = TaskOptions(traceparent: Self.parent, tracestate: "rojo=00f067aa0ba902b7")
            let traced = try await producer.submit("trace", json: "{}", options: options)
            let plain = try await producer.submit("trace", json: "{}")
            let failing = try await producer.submit("fail", json: #"{"message":"on purpose"}"#, options: options)
            // Queued, not yet run: what the handler gets comes back from the journal.
            try cluster.restartBroker()
            let consumer = try cluster.startConsumer(threads: 2, arguments: ["--log-format", "json"])

            let result = await traced.result()
            #expect(result.status == .ok)
            let body = try #require(Self.object(result.body.text), "\(result.body.text)")
            #expect(body["traceparent"] as? String == Self.parent)
            #expect(body["tracestate"] as? String == "rojo=00f067aa0ba902b7")
            #expect(body["trace_id"] as? String == Self.traceID)
            #expect(await plain.result().body.text == "{}", "a task without one gets none")
            #expect(await failing.result().status == .error)

            let line = consumer.waitForLine(timeout: .seconds(10)) { $0.contains(#""msg":"task failed""#) }
            let logged = try #require(line.flatMap(Self.object), "\(consumer.output.suffix(10))")
            #expect(logged["task.id"] as? String == failing.id)
            #expect(logged["trace.id"] as? String == Self.traceID)
        }
    }

    @Test("without a traceparent of its own, a task takes the caller's current trace from the bootstrapped instrument; its own wins; a malformed one is refused locally")
    func injectedFromServiceContext() async throws {
        TestInstrument.install()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
            let context = TestInstrument.context(traceparent: Self.parent)
            let injected = try await ServiceContext.$current.withValue(context) { try await producer.run("trace", json: "{}") }
            let explicit = try await ServiceContext.$current.withValue(context) {
                try await producer.run("trace", json: "{}", options: TaskOptions(traceparent: own))
            }
            let body = try #require(Self.object(injected.body.text), "\(injected.body.text)")
            #expect(body["traceparent"] as? String == Self.parent && body["tracestate"] as? String == "test=1")
            #expect(Self.object(explicit.body.text)?["traceparent"] as? String == own)
            #expect(try await producer.run("trace", json: "{}").body.text == "{}", "no current context, nothing injected")

            await #expect {
                _ = try await producer.submit("trace", json: "{}", options: TaskOptions(traceparent: "00-abc"), id: "bad-trace")
            } throws: { error in
                guard case .rejected(let id, let reason)? = error as? ProducerError else { return false }
                return id == "bad-trace" && reason.hasPrefix("options: traceparent '00-abc' is not a W3C traceparent")
            }
            let batch = try await producer.submit(batch: [
                TaskSubmission("trace", json: RawJSON("{}"), options: TaskOptions(tracestate: "rojo=1")),
                TaskSubmission("trace", json: RawJSON("{}")),
            ])
            let refused = await batch[0].result()
            #expect(refused.status == .rejected)
            #expect(refused.errorMessage?.contains("tracestate is given without a traceparent") == true, "\(refused)")
            #expect(await batch[1].result().status == .ok, "the rest of the batch goes on")
        }
    }

    @Test("conveyor submit --traceparent: the handler gets it; a malformed one is a usage error naming the option")
    func commandLine() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let submit = try ManagedProcess(name: "submit", executable: cluster.executable, arguments: [
                "submit", "trace", "{}", "--traceparent", Self.parent, "--tracestate", "rojo=1", "--broker", cluster.frontend,
            ])
            #expect(submit.waitForExit(timeout: .seconds(30)) == 0)
            let printed = submit.output.first { $0.hasPrefix("{") }.flatMap(Self.object)
            #expect(printed?["traceparent"] as? String == Self.parent && printed?["tracestate"] as? String == "rojo=1",
                    "\(submit.output)")

            let bad = try ManagedProcess(name: "bad", executable: cluster.executable, arguments: [
                "submit", "trace", "{}", "--traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "--broker", cluster.frontend,
            ])
            #expect(bad.waitForExit(timeout: .seconds(30)) == 64)
            #expect(bad.output.contains { $0.contains("error: --traceparent '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01' is not a W3C traceparent: character 5 is not a lowercase hex digit") },
                    "\(bad.output)")
        }
    }
}
