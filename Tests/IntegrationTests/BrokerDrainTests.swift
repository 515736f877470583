import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// SIGTERM to the broker: it takes no new tasks, waits for the running ones' results (up to
/// `--drain-timeout`), delivers them, makes its journal durable and exits; a second SIGTERM ends
/// the wait at once.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BrokerDrainTests {
    @Test("SIGTERM drains: running tasks finish and are delivered, new ones are refused, the broker exits 0")
    func drainWaitsForRunning() async throws {
        try await withCluster(.init(consumers: 1, threads: 4)) { cluster in
            let producer = try cluster.makeProducer()
            let handles = try await producer.submit(batch: (0..<4).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":1500}"#)) })
            try await waitUntil { (try? await cluster.stats())?.running == 4 }
            let broker = try #require(cluster.broker)
            let signalled = ContinuousClock.now
            broker.send(SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            let late = try cluster.makeProducer()
            do {
                _ = try await late.submit("echo", json: "{}")
                Issue.record("a task was accepted by a stopping broker")
            } catch {
                #expect("\(error)".contains("shutting down"), "\(error)")
            }
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok, "\(result)")
            }
            let status = broker.waitForExit(timeout: .seconds(20))
            #expect(status == 0)
            #expect(signalled.duration(to: .now) >= .milliseconds(1000), "it waited for the running tasks")
            #expect(broker.output.contains { $0.contains("waiting for the running ones") })
        }
    }

    @Test("a second SIGTERM stops the broker at once, running tasks or not")
    func secondSignalStopsNow() async throws {
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--drain-timeout", "1"])) { cluster in
            let producer = try cluster.makeProducer()
            _ = try await producer.submit(batch: (0..<2).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":20000}"#)) })
            try await waitUntil { (try? await cluster.stats())?.running == 2 }
            let broker = try #require(cluster.broker)
            broker.send(SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            #expect(broker.isRunning, "the first SIGTERM waits for the running tasks")
            let second = ContinuousClock.now
            broker.send(SIGTERM)
            #expect(broker.waitForExit(timeout: .seconds(10)) == 0)
            #expect(second.duration(to: .now) < .seconds(3))
        }
    }
}
