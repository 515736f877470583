import TestSupport
import ConveyorProtocol
import ConveyorTesting
import Foundation
import ConveyorProducer
import Testing
import ZeroMQ

/// Frozen consumers, broker restarts, time limits, stuck handlers, retries and dead letters.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ReliabilityTests {
    /// Fast heartbeats so that liveness is lost in about a second.
    static let fast = ["--heartbeat-ms", "200"]

    @Test("a SIGSTOPped consumer's tasks finish elsewhere; its late results after SIGCONT are not delivered twice")
    func frozenConsumer() async throws {
        try await withCluster(.init(consumers: 2, threads: 2, brokerArguments: Self.fast,
                                    consumerArguments: Self.fast + ["--log-level", "debug"])) { cluster in
            let producer = try cluster.makeProducer()
            var handles: [TaskHandle] = []
            for _ in 0..<4 { handles.append(try await producer.submit("sleep", json: #"{"ms":1500}"#)) }
            let frozen = cluster.consumers[0]
            // Freeze it only once both its threads are inside their handlers.
            try await waitUntil { frozen.output.filter { $0.contains("task started") }.count >= 2 }
            frozen.send(SIGSTOP)
            var pids: [Int: Int] = [:]
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok)
                pids[result.info?.pid ?? 0, default: 0] += 1
            }
            let finishedBefore = frozen.output.filter { $0.contains("task succeeded") }.count
            frozen.send(SIGCONT)
            // The thawed consumer finishes the sleeps it held and reports them; the broker, which
            // has long given those tasks to the other consumer, must not complete them again.
            try await waitUntil { frozen.output.filter { $0.contains("task succeeded") }.count >= finishedBefore + 2 }
            try await waitUntil { (try? await cluster.stats())?.running == 0 }
            let stats = try await cluster.stats()
            #expect(stats.totals.completed == 4)
            #expect(stats.totals.requeued >= 1)
            // The tasks it held when frozen were finished by the other consumer.
            #expect(pids.keys.contains { $0 != Int(frozen.pid) })
        }
    }

    @Test("the broker restarts (in memory) while a producer waits: the producer resubmits and every task ends once")
    func brokerRestart() async throws {
        try await withCluster(.init(consumers: 1, threads: 4, brokerArguments: Self.fast + ["--in-memory"],
                                    consumerArguments: Self.fast)) { cluster in
            let producer = try cluster.makeProducer { $0.heartbeatInterval = .milliseconds(200) }
            var handles: [TaskHandle] = []
            for i in 0..<40 {
                handles.append(try await producer.submit("sleep", json: #"{"ms":\#(100 + i % 3)}"#))
            }
            _ = await handles[0].result()
            cluster.broker?.send(SIGKILL)
            _ = cluster.broker?.waitForExit(timeout: .seconds(10))
            try cluster.restartBroker()
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok, "task \(i): \(result)")
                #expect(result.body.text == #"{"slept_ms":\#(100 + i % 3)}"#)
            }
        }
    }

    @Test("a running task past its time limit ends as timeout")
    func runningTimeout() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            let result = try await producer.submit("sleep", json: #"{"ms":1500}"#, options: TaskOptions(timeoutMilliseconds: 300)).result()
            #expect(result.status == .timeout)
            #expect(result.errorMessage?.contains("while running") == true)
            // The thread stays busy until the handler returns; then the consumer takes work again.
            #expect(try await producer.submit("echo", json: "1").result().status == .ok)
        }
    }

    @Test("a handler stuck past the hard limit gets its consumer process replaced; the other tasks it held are requeued")
    func stuckHandlerReplaced() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: Self.fast)) { cluster in
            for _ in 0..<2 {
                try cluster.startConsumer(threads: 2, processes: 1, arguments: Self.fast + ["--hard-limit-grace", "0.3"])
            }
            try await waitUntil { (try? await cluster.stats().consumers.count) == 2 }
            let producer = try cluster.makeProducer()
            let stuck = try await producer.submit("sleep", json: #"{"ms":4000}"#, options: TaskOptions(timeoutMilliseconds: 300))
            var others: [TaskHandle] = []
            for _ in 0..<6 {
                others.append(try await producer.submit("sleep", json: #"{"ms":400}"#, options: TaskOptions(timeoutMilliseconds: 60_000)))
            }
            #expect(await stuck.result().status == .timeout)
            for handle in others { #expect(await handle.result().status == .ok) }
            let exits = cluster.consumers.compactMap { $0.waitForExit(timeout: .seconds(10)) }
            #expect(exits.contains(75), "the consumer with the stuck handler exited for replacement")
        }
    }

    @Test("the supervisor replaces a child whose handler is stuck")
    func supervisorReplacesStuckChild() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: Self.fast)) { cluster in
            try cluster.startConsumer(threads: 1, processes: 2, arguments: Self.fast + ["--hard-limit-grace", "0.3"])
            try await waitUntil { (try? await cluster.stats().consumers.count) == 2 }
            let before = Set(try await cluster.stats().consumers.map(\.pid))
            let producer = try cluster.makeProducer()
            #expect(try await producer.submit("sleep", json: #"{"ms":5000}"#, options: TaskOptions(timeoutMilliseconds: 200))
                .result().status == .timeout)
            try await waitUntil(timeout: .seconds(30)) {
                guard let pids = try? await cluster.stats().consumers.map(\.pid) else { return false }
                return pids.count == 2 && !Set(pids).isSubset(of: before)
            }
            #expect(try await producer.submit("echo", json: "2").result().status == .ok)
        }
    }

    @Test("a task that fails twice succeeds on its third attempt; the result says how many attempts ran")
    func retriesWithBackoff() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let options = TaskOptions(maxAttempts: 3, retryBackoffMilliseconds: 50)
            let result = try await producer.submit("flaky", json: #"{"failures":2}"#, options: options).result()
            #expect(result.status == .ok)
            #expect(result.body.text == #"{"attempt":3}"#)
            #expect(result.info?.attempts == 3)
            let stats = try await cluster.stats()
            #expect(stats.deadLetterTotal == 0)
        }
    }

    @Test("a task that exhausts its attempts lands in the dead-letter list, which can be requeued and purged")
    func deadLetters() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let options = TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 20)
            let result = try await producer.submit("flaky", json: #"{"failures":5}"#, options: options, id: "doomed").result()
            #expect(result.status == .error)
            #expect(result.info?.attempts == 2)
            #expect(try await cluster.stats().deadLetterTotal == 1)

            let requeued = try await producer.deadLetters(.requeue, id: "doomed")
            #expect(requeued == DeadLetterOutcome(action: .requeue, count: 1))
            try await waitUntil {
                let dead = try? await cluster.stats().deadLetterTotal
                let state = try? await producer.status(id: "doomed").state
                return dead == 1 && state == .done
            }
            let purged = try await producer.deadLetters(.purge)
            #expect(purged == DeadLetterOutcome(action: .purge, count: 1))
            #expect(try await cluster.stats().deadLetterTotal == 0)
        }
    }
}

/// Garbage, strangers and floods on the broker's ports.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostileInputTests {
    @Test("100,000 random and mutated frames at the frontend and backend: the broker keeps serving, memory stays bounded")
    func fuzzBroker() async throws {
        try await withCluster(.init(consumers: 1, threads: 4, brokerArguments: ["--heartbeat-ms", "200"])) { cluster in
            let producer = try cluster.makeProducer()
            #expect(try await producer.submit("echo", json: "0").result().status == .ok)
            let brokerPID = try #require(cluster.broker?.pid)
            let before = residentBytes(brokerPID)
            let frontend = cluster.frontend, backend = cluster.backend
            try await Task.detached {
                var fuzzer = Fuzzer(seed: 42)
                try fuzzer.run(frontend: frontend, backend: backend, messages: 100_000)
            }.value
            // A normal batch still completes, every result correct.
            let handles = try await (0..<500).asyncMap { try await producer.submit("echo", json: #"{"n":\#($0)}"#) }
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok)
                #expect(result.body.text == #"{"n":\#(i)}"#)
            }
            let after = residentBytes(brokerPID)
            #expect(after < before + 64 * 1024 * 1024, "broker RSS grew from \(before) to \(after) bytes")
            let stats = try await cluster.stats()
            #expect(stats.totals.badMessages > 1000)
        }
    }

    @Test("a hostile backend peer (huge heartbeat, foreign retry, foreign result) cannot crash the broker or finish others' tasks")
    func hostileBackendPeer() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let producer = try cluster.makeProducer()
            // Queued: no consumer serves it yet.
            let handle = try await producer.submit("echo", json: #"{"mine":1}"#, id: "victim-1")
            let backend = cluster.backend
            let replies = try await Task.detached { () throws -> [String] in
                let context = try Context()
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                try socket.connect(backend)
                let tag = Array("CVY2".utf8)
                try socket.send(multipart: [tag, [0x21], Array(#"{"capacity":1,"tasks":["other"],"host":"x","pid":1,"threads":1,"heartbeat_ms":5000000000000}"#.utf8)])
                try socket.send(multipart: [tag, [0x23], packedFields([Array("victim-1".utf8), Array("retry".utf8), Array("{}".utf8), Array("{}".utf8)])])
                try socket.send(multipart: [tag, [0x23], packedFields([Array("victim-1".utf8), Array("ok".utf8), Array(#""forged""#.utf8), Array("{}".utf8)])])
                // A status the protocol does not know: a bad message, the task untouched.
                try socket.send(multipart: [tag, [0x23], packedFields([Array("victim-1".utf8), Array("done!".utf8), Array("1".utf8), Array("{}".utf8)])])
                // A capacity update from a consumer the broker does not know: DISCONNECT, not a registration.
                let stranger = try Socket(context, type: .dealer)
                try stranger.set(.linger, 0)
                try stranger.connect(backend)
                try stranger.send(multipart: [tag, [0x21], Array(#"{"capacity":5,"tasks":["echo"],"host":"x","pid":2,"threads":1,"update":true}"#.utf8)])
                var strangerPoller = Poller()
                strangerPoller.add(stranger)
                #expect(try strangerPoller.poll(timeout: .seconds(5)) == 1, "an answer to a capacity update from a stranger")
                let answer = try #require(try stranger.receiveMultipart(flags: .dontWait)).map(\.bytes)
                #expect(answer == [tag, [0x06]], "DISCONNECT")
                var replies: [String] = []
                var poller = Poller()
                poller.add(socket)
                while try poller.poll(timeout: .milliseconds(500)) > 0, let frames = try socket.receiveMultipart(flags: .dontWait) {
                    replies.append(frames.map(\.string).joined(separator: "|"))
                }
                return replies
            }.value
            #expect(replies.contains { $0.contains("heartbeat_ms must be 1-60000") })
            #expect(cluster.broker?.isRunning == true)
            #expect(try await cluster.stats().consumers.isEmpty, "no hostile peer got registered")
            // The real consumer comes and runs the task: the forged result did not count.
            try cluster.startConsumer(threads: 1)
            let result = await handle.result()
            #expect(result.status == .ok)
            #expect(result.body.text == #"{"mine":1}"#)
        }
    }

    @Test("args over --max-message-size are rejected with the sizes; a frame past the socket's cap is dropped; others carry on")
    func oversizedMessage() async throws {
        try await withCluster(.init(consumers: 1, threads: 1, brokerArguments: ["--max-message-size", "65536"])) { cluster in
            let frontend = cluster.frontend
            try await Task.detached {
                let context = try Context()
                let tag = Array("CVY2".utf8)
                // Args over the limit, in a frame the socket still takes: REJECTED, naming the sizes.
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                try socket.connect(frontend)
                let big = [UInt8](repeating: 0x7B, count: 200_000)
                try socket.send(multipart: [tag, [0x01], packedFields([Array("big-1".utf8), Array("echo".utf8), [], big])])
                var poller = Poller()
                poller.add(socket)
                #expect(try poller.poll(timeout: .seconds(5)) == 1, "an answer to args over the limit")
                let reply = try #require(try socket.receiveMultipart(flags: .dontWait)).map(\.bytes)
                #expect(reply.count == 3 && reply[1] == [0x12])
                let fields = try Envelope(frames: reply, fromRouter: false).body.map(\.string)
                #expect(fields.first == "big-1")
                #expect(fields.last?.contains("200000 bytes") == true && fields.last?.contains("65536") == true, "\(fields)")
                // A frame past the socket's cap (the limit plus the packing allowance): libzmq drops it unanswered.
                let huge = [UInt8](repeating: 0x7B, count: 65_536 + Int(Limits.packedFrameAllowance) + 1)
                let other = try Socket(context, type: .dealer)
                try other.set(.linger, 0)
                try other.connect(frontend)
                try other.send(multipart: [tag, [0x01], packedFields([Array("huge-1".utf8), Array("echo".utf8), [], huge])])
                var otherPoller = Poller()
                otherPoller.add(other)
                #expect(try otherPoller.poll(timeout: .milliseconds(500)) == 0, "no answer to a frame over the socket's cap")
            }.value
            let producer = try cluster.makeProducer()
            #expect(try await producer.submit("echo", json: "[1]").result().status == .ok)
            #expect(try await producer.status(id: "big-1").state == .unknown)
            #expect(try await producer.status(id: "huge-1").state == .unknown)
        }
    }
}

/// Sends random and mutated Conveyor frames from raw sockets; never reads what comes back except
/// to keep its queues from filling.
struct Fuzzer {
    var random: SplitMix

    init(seed: UInt64) { random = SplitMix(seed: seed) }

    mutating func run(frontend: String, backend: String, messages: Int) throws {
        let context = try Context()
        var sockets: [Socket] = []
        for endpoint in [frontend, backend, frontend, backend] {
            let socket = try Socket(context, type: .dealer)
            try socket.set(.linger, 0)
            try socket.set(.sendHighWaterMark, 0)
            try socket.connect(endpoint)
            sockets.append(socket)
        }
        let commands: [UInt8] = Command.allCases.map(\.rawValue) + [0x00, 0x7F, 0xFF]
        for i in 0..<messages {
            let socket = sockets[i % sockets.count]
            var frames: [[UInt8]] = []
            switch random.next() % 4 {
            case 0:
                // Pure garbage.
                for _ in 0..<(1 + random.next() % 5) { frames.append(bytes(count: Int(random.next() % 40))) }
            case 1:
                // A real tag and command with random body frames.
                frames = [Array("CVY2".utf8), [commands[Int(random.next() % UInt64(commands.count))]]]
                for _ in 0..<(random.next() % 9) { frames.append(bytes(count: Int(random.next() % 24))) }
            case 2:
                // Wrong versions and truncations.
                frames = [Array("CVY\(random.next() % 10)".utf8)]
                if random.next() % 2 == 0 { frames.append([commands[Int(random.next() % UInt64(commands.count))]]) }
            default:
                // A well-formed message with one field mutated, or its packed frame cut short.
                let tag = Array("CVY2".utf8)
                var command: UInt8 = 0x01
                var fields: [[UInt8]] = [Array("fz-\(i)".utf8), Array("echo".utf8), [], Array("{}".utf8)]
                if random.next() % 3 == 0 { (command, fields) = (0x23, [Array("fz-\(i)".utf8), Array("ok".utf8), Array("{}".utf8), Array("{}".utf8)]) }
                let index = Int(random.next() % UInt64(fields.count))
                switch random.next() % 4 {
                case 0: fields[index] = bytes(count: Int(random.next() % 300))
                case 1: fields.remove(at: index)
                case 2: fields.insert(bytes(count: 3), at: index)
                default: break
                }
                var body = packedFields(fields)
                if random.next() % 4 == 0 { body.removeLast(Int(random.next() % UInt64(body.count + 1))) }
                frames = random.next() % 5 == 0 ? [tag, [0x21], Array(#"{"capacity":-\#(i)}"#.utf8)] : [tag, [command], body]
            }
            try socket.send(multipart: frames)
            if i % 1000 == 0 {
                for socket in sockets { while try socket.receive(flags: .dontWait) != nil {} }
            }
        }
    }

    mutating func bytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }
}

/// A seeded generator, so a failing fuzz run can be replayed.
typealias SplitMix = TestSupport.SplitMix64

func residentBytes(_ pid: Int32) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return 0
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}

/// The packed frame of a command that carries groups: each field as a 4-byte big-endian length
/// and its bytes (docs/PROTOCOL.md, "Packed groups").
func packedFields(_ fields: [[UInt8]]) -> [UInt8] {
    fields.flatMap { field -> [UInt8] in
        let count = UInt32(field.count)
        return [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + field
    }
}
