// The Swift samples of docs/TESTING.md, as printed there (DocSamplesTests checks that each
// block of the page is here, imports apart): they compile with the suite and run with it.
import ConveyorConsumer
import ConveyorProducer
import ConveyorTesting
import Foundation
import Logging
import Testing

@Test func echoesComeBackAfterAKill() async throws {
    try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
        let producer = try cluster.makeProducer()
        let handle = try await producer.submit("echo", json: #"{"n": 1}"#)
        #expect(await handle.result().status == .ok)

        cluster.consumers[0].send(SIGKILL)          // a real signal to a real process
        try await cluster.waitForConsumers(1)
        try cluster.restartBroker()                  // same endpoints, the same journal
    }
}

enum Greet: TaskDefinition {
    static let name = "greet"
    struct Args: Codable, Sendable { let who: String }
    struct Output: Codable, Sendable { let text: String }
}

@Test func greetingsAreTyped() async throws {
    try await withCluster(.init(consumers: 0)) { cluster in
        var registry = TaskRegistry()
        registry.register(Greet.self) { args, context async in
            context.logger.debug("greeting")
            return Greet.Output(text: "hello, \(args.who)")
        }
        var configuration = ConsumerConfiguration()
        configuration.backend = cluster.backend
        let consumer = Consumer(configuration: configuration, registry: registry, logger: Logger(label: "test"))
        let running = Task { try await consumer.run() }
        defer { consumer.stop(); running.cancel() }
        try await cluster.waitForConsumers(1)

        let producer = try cluster.makeProducer()
        let output = try await producer.run(Greet.self, .init(who: "world"))
        #expect(output.text == "hello, world")
    }
}
