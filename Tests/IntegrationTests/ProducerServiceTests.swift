import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
@testable import ConveyorProducer
import ServiceLifecycle
import Testing
import ZeroMQ

/// The producer as a swift-service-lifecycle `Service`: started by `run()`, stopped by graceful
/// shutdown or cancellation, once only, and usable before it runs.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ProducerServiceTests {
    /// An endpoint where nothing listens: ZeroMQ keeps trying to connect, nothing is answered.
    static let silent = "tcp://127.0.0.1:9"

    static func configuration(_ broker: String, timeout: Duration = .seconds(60)) -> ProducerConfiguration {
        var configuration = ProducerConfiguration(broker: broker)
        configuration.requestTimeout = timeout
        return configuration
    }

    /// Waits until `count` tasks wait in the producer's table (a call has got as far as queueing).
    static func waitForPending(_ producer: Producer, _ count: Int) async throws {
        try await waitUntil { producer.table.withLock { $0.tasks.count } == count }
    }

    @Test("calls made before run() wait in the table and are served once the producer runs in a ServiceGroup")
    func callsBeforeRun() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = Producer(configuration: Self.configuration(cluster.frontend), logger: testLogger)
            let early = Task { try await producer.run("echo", json: "[1]") }
            let submitted = Task { try await producer.submit(batch: [TaskSubmission("echo", json: RawJSON("[2]"))]) }
            let stats = Task { try await producer.stats() }
            try await Self.waitForPending(producer, 2)

            let group = ServiceGroup(configuration: .init(services: [.init(service: producer)], logger: testLogger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(try await early.value.body.text == "[1]")
                #expect(try await submitted.value[0].result().body.text == "[2]")
                #expect(try await stats.value.consumers.count == 1)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            await #expect(throws: ProducerError.closed) { try await producer.submit("echo", json: "[3]") }
        }
    }

    @Test("graceful shutdown of the group ends what waits: a submit throws closed, a round trip gets an error result")
    func gracefulShutdownEndsWaits() async throws {
        let producer = Producer(configuration: Self.configuration(Self.silent), logger: testLogger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: producer)], logger: testLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let submit = Task { try await producer.submit("echo", json: "[1]") }
            let roundTrip = Task { try await producer.run("echo", json: "[2]") }
            let status = Task { try await producer.status(id: "anything") }
            try await Self.waitForPending(producer, 2)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            await #expect(throws: ProducerError.closed) { try await submit.value }
            await #expect(throws: ProducerError.closed) { try await status.value }
            let result = try await roundTrip.value
            #expect(result.status == .error && result.errorKind == .consumerLost)
        }
        #expect(producer.table.withLock { $0.isClosed && $0.tasks.isEmpty && $0.replyWaiterCount == 0 })
    }

    @Test("a producer runs once: a second run() throws ServiceStateError, while running and after")
    func runsOnce() async throws {
        let producer = Producer(configuration: Self.configuration(Self.silent), logger: testLogger)
        let running = Task { try await producer.run() }
        try await waitUntil { producer.runState.current == .running }
        await #expect(throws: ServiceStateError.self) { try await producer.run() }
        producer.beginGracefulShutdown()
        try await running.value
        await #expect(throws: ServiceStateError.self) { try await producer.run() }
    }

    @Test("shut down before it ran: waiting calls fail at once with closed, and run() then returns at once")
    func shutdownBeforeRun() async throws {
        let producer = Producer(configuration: Self.configuration(Self.silent), logger: testLogger)
        let submit = Task { try await producer.submit("echo", json: "[1]") }
        try await Self.waitForPending(producer, 1)
        producer.beginGracefulShutdown()
        await #expect(throws: ProducerError.closed) { try await submit.value }
        let started = ContinuousClock.now
        try await producer.run()
        #expect(started.duration(to: .now) < .seconds(5))
    }

    @Test("cancelling the task that runs the producer shuts it down")
    func cancellation() async throws {
        let producer = Producer(configuration: Self.configuration(Self.silent), logger: testLogger)
        let running = Task { try await producer.run() }
        let submit = Task { try await producer.submit("echo", json: "[1]") }
        try await Self.waitForPending(producer, 1)
        running.cancel()
        try await running.value
        await #expect(throws: ProducerError.closed) { try await submit.value }
    }

    @Test("withProducer shuts the producer down when its body returns, and reports a loop that could not start")
    func scopedHelper() async throws {
        let kept = try await withProducer(Self.configuration(Self.silent), logger: testLogger) { producer in
            #expect(producer.makeTaskID().utf8.count == 15)
            return producer
        }
        #expect(kept.table.withLock { $0.isClosed })
        await #expect(throws: ProducerError.closed) { try await kept.stats() }

        // A malformed endpoint: zmq_connect fails in run(); the body's call ends with `closed`, but
        // the error reported is the loop's, which says why.
        await #expect(throws: ZMQError.self) {
            try await withProducer(Self.configuration("no-such-transport://x"), logger: testLogger) { producer in
                try await producer.submit("echo", json: "[1]")
            }
        }
    }
}
