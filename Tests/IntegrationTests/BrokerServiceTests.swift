import ConveyorBroker
import ConveyorProtocol
import ConveyorSystem
import Foundation
import Logging
import ServiceLifecycle
import Testing
import ZeroMQ

/// A library user's broker: embedded in their own `ServiceGroup`, in this process.
@Suite("Broker as a service", .serialized)
struct BrokerServiceTests {
    var logger: Logger {
        var logger = Logger(label: "broker-service-tests")
        logger.logLevel = .warning
        return logger
    }

    func configuration(frontend: String = "tcp://127.0.0.1:*", backend: String = "tcp://127.0.0.1:*") -> BrokerConfiguration {
        var configuration = BrokerConfiguration()
        configuration.frontend = frontend
        configuration.backend = backend
        return configuration
    }

    /// A DEALER on the frontend that asks STATS and reads the answer (a real socket, short timeouts).
    func askStats(_ endpoint: String, context: Context) throws -> (Socket, BrokerStatistics) {
        let dealer = try Socket(context, type: .dealer)
        try dealer.set(.linger, 0)
        try dealer.set(.receiveTimeout, 5000)
        try dealer.connect(endpoint)
        _ = try dealer.send(multipart: [ProtocolTag.current, [Command.stats.rawValue]])
        let reply = try #require(try dealer.receiveMultipart())
        #expect(reply.count == 3 && reply[1].bytes == [Command.statsReply.rawValue])
        return (dealer, try JSONDecoder().decode(BrokerStatistics.self, from: Data(reply[2].bytes)))
    }

    @Test("a broker in a ServiceGroup binds, answers, tells its peers goodbye on graceful shutdown, and runs only once")
    func embeddedInAServiceGroup() async throws {
        let broker = Broker(configuration: configuration(), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: broker)], logger: logger))
        let context = try Context()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let endpoints = try await broker.endpoints()
            #expect(endpoints.frontend.hasPrefix("tcp://127.0.0.1:") && !endpoints.frontend.hasSuffix(":*"))
            let (dealer, stats) = try askStats(endpoints.frontend, context: context)
            #expect(stats.queuedTotal == 0 && stats.consumers.isEmpty)
            #expect(stats.protocolVersion == ProtocolTag.currentText)
            await #expect(throws: ServiceStateError.self) { try await broker.run() }

            await group.triggerGracefulShutdown()
            try await tasks.next()
            // The broker said goodbye to the producer it had heard from.
            let goodbye = try #require(try dealer.receiveMultipart())
            #expect(goodbye[1].bytes == [Command.disconnect.rawValue])
        }
        await #expect(throws: ServiceStateError.self) { try await broker.run() }
    }

    @Test("a broker whose port is taken fails run() and endpoints() at once with the bind error")
    func portInUse() async throws {
        let first = Broker(configuration: configuration(), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: first)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let taken = try await first.endpoints()
            let second = Broker(configuration: configuration(frontend: taken.frontend), logger: logger)
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) { try await second.run() }
            do {
                _ = try await second.endpoints()
                Issue.record("endpoints() of a broker that could not bind returned")
            } catch {
                #expect("\(error)".contains("Address already in use"))
            }
            #expect(ContinuousClock.now - started < .seconds(5))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
