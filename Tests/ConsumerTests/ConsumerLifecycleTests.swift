import ConveyorConsumer
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// How a consumer's connection changes and ends, against the fake broker: reconnects, a drain
/// that times out, a stuck handler.
@Suite("Consumer connection lifecycle against a ROUTER standing in for the broker", .serialized)
struct ConsumerLifecycleTests {
    func configuration(backend: String) -> ConsumerConfiguration {
        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = 1
        configuration.prefetch = .fixed(0)
        configuration.heartbeatInterval = .seconds(5)
        configuration.liveness = 12
        return configuration
    }

    /// A registry with `block`, which waits at `gate`, and `echo`.
    func registry(gate: Gate, started: Counter) -> TaskRegistry {
        var registry = TaskRegistry()
        registry.registerRaw("block") { json, _ in
            started.increment()
            gate.wait()
            return json
        }
        registry.registerRaw("echo") { json, _ in json }
        return registry
    }

    @Test("DISCONNECT from the broker: the consumer connects again and announces itself anew, then serves tasks")
    func reconnectsWhenAsked() throws {
        let broker = try FakeBroker()
        let gate = Gate()
        defer { gate.open() }
        let consumer = RunningConsumer(Consumer(configuration: configuration(backend: broker.endpoint),
                                                registry: registry(gate: gate, started: Counter()), logger: ConsumerTests.logger))
        defer { consumer.stop() }
        let first = try broker.expect(.ready)
        let firstPeer = try #require(first.routingID).bytes
        try OutgoingMessage(to: Message(firstPeer), .disconnect).send(on: broker.router)
        let second = try broker.expect(.ready)
        #expect(try broker.readyInfo(second).capacity == 1)
        let peer = try #require(second.routingID).bytes
        #expect(peer != firstPeer, "a new connection, with a new identity")
        try broker.dispatch(to: peer, [(id: "e", name: "echo", args: "7")])
        #expect(try broker.results(count: 1)["e"]?.bodyText == "7")
    }

    @Test("a silent broker: after liveness intervals without a word the consumer reconnects")
    func reconnectsWhenBrokerIsSilent() throws {
        let broker = try FakeBroker()
        var configuration = configuration(backend: broker.endpoint)
        configuration.heartbeatInterval = .milliseconds(50)
        configuration.liveness = 3
        let consumer = RunningConsumer(Consumer(configuration: configuration, registry: TaskRegistry(), logger: ConsumerTests.logger))
        defer { consumer.stop() }
        let first = try broker.expect(.ready)
        // The fake broker never heartbeats: the consumer gives up on it and announces itself again.
        let second = try broker.expect(.ready)
        #expect(second.routingID?.bytes != first.routingID?.bytes)
    }

    @Test("a drain that outlasts its timeout says DISCONNECT and run() throws DrainTimedOut with the tasks abandoned")
    func drainTimesOut() throws {
        let broker = try FakeBroker()
        let gate = Gate()
        defer { gate.open() }
        let started = Counter()
        var configuration = configuration(backend: broker.endpoint)
        configuration.drainTimeout = .milliseconds(200)
        let consumer = RunningConsumer(Consumer(configuration: configuration, registry: registry(gate: gate, started: started),
                                                logger: ConsumerTests.logger))
        let peer = try #require(try broker.expect(.ready).routingID).bytes
        try broker.dispatch(to: peer, [(id: "b", name: "block", args: "1")])
        try #require(started.wait(untilAtLeast: 1))
        consumer.stop()
        #expect(try broker.readyInfo(try broker.expect(.ready)).capacity == 0)
        _ = try broker.expect(.disconnect)
        let outcome = try #require(consumer.waitForEnd())
        #expect {
            try outcome.get()
        } throws: { error in
            (error as? Consumer.DrainTimedOut)?.abandoned == 1
        }
    }

    @Test("a handler stuck past its hard limit: unstarted work handed back, DISCONNECT, run() throws StuckHandler")
    func stuckHandler() throws {
        let broker = try FakeBroker()
        let gate = Gate()
        defer { gate.open() }
        let started = Counter()
        var configuration = configuration(backend: broker.endpoint)
        configuration.prefetch = .fixed(1)
        configuration.hardLimitGrace = .milliseconds(100)
        let consumer = RunningConsumer(Consumer(configuration: configuration, registry: registry(gate: gate, started: started),
                                                logger: ConsumerTests.logger))
        let peer = try #require(try broker.expect(.ready).routingID).bytes
        try broker.dispatch(to: peer, [(id: "stuck", name: "block", args: "1"), (id: "waiting", name: "echo", args: "2")],
                            timeoutMilliseconds: 100)
        try #require(started.wait(untilAtLeast: 1))
        let handedBack = try broker.results(count: 1)
        #expect(handedBack["waiting"]?.status == .requeue)
        _ = try broker.expect(.disconnect)
        let outcome = try #require(consumer.waitForEnd())
        #expect {
            try outcome.get()
        } throws: { error in
            (error as? Consumer.StuckHandler).map { $0.taskID == "stuck" && $0.name == "block" } == true
        }
    }
}
