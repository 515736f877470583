import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import ConveyorSystem
import Foundation
import Logging
import ServiceLifecycle
import Testing

@Suite("Consumer as a Service", .serialized)
struct ConsumerServiceTests {
    func configuration(backend: String) -> ConsumerConfiguration {
        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = 1
        configuration.prefetch = .fixed(0)
        configuration.heartbeatInterval = .seconds(5)
        configuration.liveness = 12
        return configuration
    }

    @Test("a second run() of a consumer, while it runs or after it finished, fails with a clear error")
    func runsOnce() throws {
        let broker = try FakeBroker()
        let consumer = Consumer(configuration: configuration(backend: broker.endpoint),
                                registry: BuiltinTasks.registry, logger: ConsumerTests.logger)
        let running = RunningConsumer(consumer)
        defer { running.stop() }
        _ = try broker.expect(.ready)
        let second = RunningConsumer(consumer)
        let refused = try #require(second.waitForEnd(), "a second run() should end at once")
        #expect {
            try refused.get()
        } throws: { error in
            (error as? ServiceStateError)?.description == "cannot run this consumer: it is already running; a consumer runs once"
        }
        running.stop()
        _ = try broker.expect(.ready)
        _ = try broker.expect(.disconnect)
        #expect(running.waitForEnd() != nil)
        let third = RunningConsumer(consumer)
        let after = try #require(third.waitForEnd())
        #expect {
            try after.get()
        } throws: { error in
            (error as? ServiceStateError)?.description == "cannot run this consumer: it has already run and finished; make a new one"
        }
    }

    @Test("embedded in a ServiceGroup, a consumer drains on the group's graceful shutdown and the group ends")
    func gracefulShutdownOfAGroup() async throws {
        let broker = try FakeBroker()
        let consumer = Consumer(configuration: configuration(backend: broker.endpoint),
                                registry: BuiltinTasks.registry, logger: ConsumerTests.logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: consumer)], logger: ConsumerTests.logger))
        let ended = OneShot<Result<Void, any Error>>()
        Task {
            do {
                try await group.run()
                ended.set(.success(()))
            } catch {
                ended.set(.failure(error))
            }
        }
        let ready = try broker.expect(.ready)
        let peer = try #require(ready.routingID).bytes
        try broker.dispatch(to: peer, [(id: "e1", name: "echo", args: "[1]")])
        #expect(try broker.results(count: 1)["e1"]?.status == .ok)
        await group.triggerGracefulShutdown()
        #expect(try broker.readyInfo(try broker.expect(.ready)).capacity == 0)
        _ = try broker.expect(.disconnect)
        let outcome = try #require(ended.waitBlocking(timeout: patience), "the group did not end after the drain")
        #expect(throws: Never.self) { try outcome.get() }
    }
}
