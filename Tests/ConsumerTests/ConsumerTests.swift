import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import Foundation
import Logging
import Testing
import ZeroMQ

/// A ROUTER socket standing in for the broker's backend, driven by the test thread.
final class FakeBroker {
    let context: Context
    let router: Socket
    let endpoint: String

    init() throws {
        context = try Context()
        router = try Socket(context, type: .router)
        try router.set(.linger, 0)
        try router.bind("tcp://127.0.0.1:*")
        endpoint = try router.lastEndpoint
    }

    /// The next message other than a HEARTBEAT, parsed; `nil` if none arrives within `timeout`.
    func receive(within timeout: Duration = patience) throws -> Envelope? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return nil }
            var poller = Poller()
            poller.add(router)
            guard try poller.poll(timeout: left) > 0,
                  let frames = try router.receiveMultipart(flags: .dontWait) else { continue }
            let envelope = try Envelope(frames: frames, fromRouter: true)
            if envelope.command == .heartbeat { continue }
            return envelope
        }
    }

    /// The next message, which must be a `command`.
    func expect(_ command: Command, sourceLocation: SourceLocation = #_sourceLocation) throws -> Envelope {
        let envelope = try #require(try receive(), "no \(command) within \(patience)", sourceLocation: sourceLocation)
        try #require(envelope.command == command, "got \(envelope.command) instead of \(command)", sourceLocation: sourceLocation)
        return envelope
    }

    /// The READY announcement in `envelope`, decoded.
    func readyInfo(_ envelope: Envelope) throws -> ReadyInfo {
        try JSONDecoder().decode(ReadyInfo.self, from: Data(envelope[0].bytes))
    }

    /// Sends one DISPATCH to `peer` holding a group per task.
    func dispatch(to peer: [UInt8], _ tasks: [(id: String, name: String, args: String)], timeoutMilliseconds: UInt32 = 10000) throws {
        var message = OutgoingMessage(to: Message(peer), .dispatch)
        for task in tasks {
            message.append(task.id)
            message.append(task.name)
            message.append(Array(task.args.utf8))
            message.append(DispatchMeta(attempt: 1, timeoutMilliseconds: timeoutMilliseconds).encoded(for: .current))
        }
        try message.send(on: router)
    }

    struct Done {
        /// The status frame through the protocol's own matcher: `nil` for a word that is not one.
        let status: DoneStatus?
        let body: [UInt8]
        let info: [UInt8]
        var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    /// Receives DONE messages until results for `count` tasks have come back, by task id.
    func results(count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Done] {
        var results: [String: Done] = [:]
        while results.count < count {
            let envelope = try expect(.done, sourceLocation: sourceLocation)
            for group in envelope.groups {
                let frames = Array(group)
                let id = frames[0].string
                #expect(results[id] == nil, "two results for \(id)", sourceLocation: sourceLocation)
                results[id] = Done(status: frames[1].withUnsafeBytes { DoneStatus(bytes: $0) }, body: frames[2].bytes, info: frames[3].bytes)
            }
        }
        return results
    }
}

/// The `{"error","kind"}` body of a failed task.
struct ErrorBody: Decodable, Equatable {
    let error: String
    let kind: String
}

@Suite("Consumer against a ROUTER standing in for the broker", .serialized)
struct ConsumerTests {
    static let logger: Logger = {
        var logger = Logger(label: "consumer-tests", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        return logger
    }()

    func configuration(backend: String) -> ConsumerConfiguration {
        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = 2
        // A fixed credit: the exchanges below expect no READY but the first and the last.
        configuration.prefetch = .fixed(0)
        // Slow heartbeats and long liveness: the fake broker never heartbeats, and the consumer
        // must not decide it is gone and reconnect in the middle of a test on a busy machine.
        configuration.heartbeatInterval = .seconds(5)
        configuration.liveness = 12
        return configuration
    }

    /// Stops `consumer` and checks the goodbye: READY with capacity 0, then DISCONNECT, then run() returns.
    func stopAndExpectGoodbye(_ consumer: RunningConsumer, broker: FakeBroker) throws {
        consumer.stop()
        let draining = try broker.expect(.ready)
        #expect(try broker.readyInfo(draining).capacity == 0)
        _ = try broker.expect(.disconnect)
        let outcome = try #require(consumer.waitForEnd(), "consumer.run() did not return after DISCONNECT")
        #expect(throws: Never.self, "consumer failed") { try outcome.get() }
    }

    @Test("A consumer announces itself with READY: capacity, task names, pid, threads; stop sends READY 0 then DISCONNECT")
    func readyAndStop() throws {
        let broker = try FakeBroker()
        let consumer = RunningConsumer(Consumer(configuration: configuration(backend: broker.endpoint),
                                                registry: BuiltinTasks.registry, logger: Self.logger))
        defer { consumer.stop() }
        let ready = try broker.expect(.ready)
        #expect(ready.routingID?.isEmpty == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(ready[0].bytes)) as? [String: Any])
        #expect(object["capacity"] as? Int == 2)
        #expect(object["threads"] as? Int == 2)
        #expect(object["pid"] as? Int == Int(getpid()))
        #expect(object["heartbeat_ms"] as? Int == 5000)
        #expect((object["host"] as? String)?.isEmpty == false)
        let tasks = try #require(object["tasks"] as? [String])
        #expect(Set(["echo", "sleep", "sha256", "fail"]).isSubset(of: Set(tasks)))
        #expect(tasks == tasks.sorted())
        try stopAndExpectGoodbye(consumer, broker: broker)
    }

    @Test("A broker of another protocol version (its ERROR tagged CVY1) stops the consumer with an error naming both versions")
    func olderBroker() throws {
        let broker = try FakeBroker()
        let consumer = RunningConsumer(Consumer(configuration: configuration(backend: broker.endpoint),
                                                registry: BuiltinTasks.registry, logger: Self.logger))
        defer { consumer.stop() }
        let ready = try broker.expect(.ready)
        let peer = try #require(ready.routingID).bytes
        // What a version-1 broker answers a version-2 READY with.
        try broker.router.send(multipart: [peer, Array("CVY1".utf8), [0x1F],
                                           Array(#"unsupported protocol "CVY2": this peer speaks "CVY1""#.utf8)])
        let outcome = try #require(consumer.waitForEnd(), "consumer.run() did not end")
        #expect {
            try outcome.get()
        } throws: { error in
            (error as? Consumer.ProtocolMismatch)?.description == "the broker speaks protocol CVY1; this consumer speaks CVY3"
        }
    }

    @Test("DISPATCHed tasks come back in DONE: ok with the echo args, error kinds for bad input, retry for a throw")
    func dispatchAndDone() throws {
        let broker = try FakeBroker()
        let consumer = RunningConsumer(Consumer(configuration: configuration(backend: broker.endpoint),
                                                registry: BuiltinTasks.registry, logger: Self.logger))
        defer { consumer.stop() }
        let ready = try broker.expect(.ready)
        let peer = try #require(ready.routingID).bytes
        let echoArgs = #"{"x":[1,2.5,{"y":"é"}], "z" : null}"#

        // Never more outstanding tasks than the announced capacity of 2.
        try broker.dispatch(to: peer, [(id: "echo-1", name: "echo", args: echoArgs),
                                       (id: "unknown-1", name: "nope", args: "{}")])
        var results = try broker.results(count: 2)
        try broker.dispatch(to: peer, [(id: "malformed-1", name: "echo", args: #"{"a":"#),
                                       (id: "fail-1", name: "fail", args: #"{"message":"it broke"}"#)])
        results.merge(try broker.results(count: 2)) { first, _ in first }
        try broker.dispatch(to: peer, [(id: "sha-1", name: "sha256", args: #"{"seed":"abc","iterations":1}"#),
                                       (id: "badargs-1", name: "sha256", args: #"{"seed":"abc"}"#)])
        results.merge(try broker.results(count: 2)) { first, _ in first }
        #expect(results.count == 6)

        let echo = try #require(results["echo-1"])
        #expect(echo.status == .ok)
        #expect(echo.bodyText == echoArgs, "echo returns its args byte for byte")

        let unknown = try #require(results["unknown-1"])
        #expect(unknown.status == .error)
        let unknownBody = try JSONDecoder().decode(ErrorBody.self, from: Data(unknown.body))
        #expect(unknownBody.kind == "unknown_task")
        let served = BuiltinTasks.registry.names.joined(separator: ", ")
        #expect(unknownBody.error == "unknown task 'nope': this consumer serves \(served)")

        let malformed = try #require(results["malformed-1"])
        #expect(malformed.status == .error)
        let malformedBody = try JSONDecoder().decode(ErrorBody.self, from: Data(malformed.body))
        #expect(malformedBody.kind == "malformed_json")
        #expect(malformedBody.error == "args for 'echo' are not valid JSON: invalid JSON at byte 5: unexpected end of input")

        let failed = try #require(results["fail-1"])
        #expect(failed.status == .retry)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(failed.body))
                    == ErrorBody(error: "it broke", kind: "handler_error"))

        let sha = try #require(results["sha-1"])
        #expect(sha.status == .ok)
        #expect(sha.bodyText == #"{"digest":"4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"}"#)

        let badArgs = try #require(results["badargs-1"])
        #expect(badArgs.status == .error)
        let badArgsBody = try JSONDecoder().decode(ErrorBody.self, from: Data(badArgs.body))
        #expect(badArgsBody.kind == "bad_args")
        #expect(badArgsBody.error.contains("missing field 'iterations'"), "\(badArgsBody.error)")

        for (id, result) in results {
            let info = try JSONDecoder().decode(ResultInfo.self, from: Data(result.info))
            #expect(info.pid == Int(getpid()), "\(id)")
            let thread = try #require(info.thread, "\(id) has no thread")
            #expect((0..<2).contains(thread), "\(id)")
            #expect(info.attempts == 1, "\(id)")
            #expect(info.host?.isEmpty == false, "\(id)")
            #expect((info.elapsedMilliseconds ?? -1) >= 0, "\(id)")
        }
        try stopAndExpectGoodbye(consumer, broker: broker)
    }

    @Test("Draining hands back unstarted tasks and late DISPATCHes as requeue, finishes running ones, then DISCONNECTs")
    func drainRequeuesUnstartedWork() throws {
        let gate = Gate()
        defer { gate.open() }
        let started = Counter()
        var registry = TaskRegistry()
        registry.registerRaw("block") { json, _ in
            started.increment()
            gate.wait()
            return json
        }
        let broker = try FakeBroker()
        let consumer = RunningConsumer(Consumer(configuration: configuration(backend: broker.endpoint),
                                                registry: registry, logger: Self.logger))
        defer { consumer.stop() }
        let ready = try broker.expect(.ready)
        #expect(try broker.readyInfo(ready).tasks == ["block"])
        let peer = try #require(ready.routingID).bytes

        try broker.dispatch(to: peer, [(id: "b1", name: "block", args: "1"), (id: "b2", name: "block", args: "2"),
                                       (id: "b3", name: "block", args: "3")])
        try #require(started.wait(untilAtLeast: 2), "both threads should be running a task")

        consumer.stop()
        let draining = try broker.expect(.ready)
        #expect(try broker.readyInfo(draining).capacity == 0)
        let requeued = try broker.results(count: 1)
        #expect(requeued["b3"]?.status == .requeue)
        #expect(requeued["b3"]?.body == [])
        #expect(requeued["b3"].map { String(decoding: $0.info, as: UTF8.self) } == "{}")

        try broker.dispatch(to: peer, [(id: "late", name: "block", args: "4")])
        let late = try broker.results(count: 1)
        #expect(late["late"]?.status == .requeue)

        gate.open()
        let finished = try broker.results(count: 2)
        #expect(finished["b1"]?.status == .ok)
        #expect(finished["b1"]?.bodyText == "1")
        #expect(finished["b2"]?.status == .ok)
        #expect(finished["b2"]?.bodyText == "2")
        _ = try broker.expect(.disconnect)
        #expect(started.value == 2, "the requeued tasks never ran")
        #expect(consumer.waitForEnd() != nil, "consumer.run() did not return after DISCONNECT")
    }
}
