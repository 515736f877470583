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

    @Test("one broker serves version-2 and version-3 peers, each in its own version, and answers HELLO")
    func servesBothVersions() async throws {
        let broker = Broker(configuration: configuration(), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: broker)], logger: logger))
        let context = try Context()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let endpoints = try await broker.endpoints()
            func dealer() throws -> Socket {
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                try socket.set(.receiveTimeout, 5000)
                try socket.connect(endpoints.frontend)
                return socket
            }
            func packed(_ fields: [[UInt8]]) -> [UInt8] {
                fields.flatMap { field in
                    withUnsafeBytes(of: UInt32(field.count).bigEndian, Array.init) + field
                }
            }
            // A version-2 producer: 16-byte options; ACCEPTED comes back tagged CVY2.
            let old = try dealer()
            let v2Options = TaskOptions(timeoutMilliseconds: 60_000).encoded(for: .v2)
            #expect(v2Options.count == 16)
            _ = try old.send(multipart: [Array("CVY2".utf8), [Command.submit.rawValue],
                                         packed([Array("old-1".utf8), Array("echo".utf8), v2Options, Array("{}".utf8)])])
            let accepted = try #require(try old.receiveMultipart())
            #expect(accepted[0].bytes == Array("CVY2".utf8) && accepted[1].bytes == [Command.accepted.rawValue])
            // A version-3 producer says HELLO and hears the broker's, with its limits.
            let new = try dealer()
            _ = try new.send(multipart: [Array("CVY3".utf8), [Command.hello.rawValue],
                                         Array(Hello(role: .producer).json.utf8)])
            let hello = try #require(try new.receiveMultipart())
            #expect(hello[0].bytes == Array("CVY3".utf8) && hello[1].bytes == [Command.hello.rawValue])
            let answer = try JSONDecoder().decode(Hello.self, from: Data(hello[2].bytes))
            #expect(answer.role == .broker && answer.versions.contains(2) && answer.versions.contains(3))
            #expect(answer.limits?.maxQueued == BrokerConfiguration().maxQueued)
            // HELLO does not exist in version 2: an ERROR, in version 2.
            _ = try old.send(multipart: [Array("CVY2".utf8), [Command.hello.rawValue], Array("{}".utf8)])
            let refused = try #require(try old.receiveMultipart())
            #expect(refused[0].bytes == Array("CVY2".utf8) && refused[1].bytes == [Command.error.rawValue])
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
