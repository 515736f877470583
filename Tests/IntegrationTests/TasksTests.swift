import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// `conveyor tasks` and `Producer.tasks(_:)` against a real broker and consumer (TASKS,
/// docs/PROTOCOL.md §4.8.3), and the producer's answer when a broker cannot list tasks.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TasksTests {
    private func cli(_ cluster: Cluster, _ arguments: [String]) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
        let status = process.waitForExit(timeout: .seconds(30))
        _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
        return (status, process.output)
    }

    /// The JSON objects among `lines` (the CLI's NDJSON on standard output).
    private func objects(_ lines: [String]) -> [[String: Any]] {
        lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Submits `echo` tasks `e0`… and `fail` tasks `f0`… with these ids and waits for every result.
    private func runBatch(_ producer: Producer, echoes: Int, failures: Int) async throws {
        let batch = (0..<echoes).map { TaskSubmission("echo", json: RawJSON(#"{"n":\#($0)}"#), id: String(format: "e%02d", $0)) }
            + (0..<failures).map { TaskSubmission("fail", json: RawJSON(#"{"message":"broken \#($0)"}"#), id: "f\($0)") }
        for handle in try await producer.submit(batch: batch) { _ = await handle.result() }
    }

    @Test("tasks --state failed --json lists exactly the failed tasks of a batch; --name filters; the table has a row per task")
    func failedTasksOfABatch() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            try await runBatch(producer, echoes: 12, failures: 3)

            let (status, failed) = try cli(cluster, ["tasks", "--state", "failed", "--json"])
            #expect(status == 0)
            let listed = objects(failed)
            #expect(listed.compactMap { $0["id"] as? String }.sorted() == ["f0", "f1", "f2"], "\(failed)")
            #expect(listed.allSatisfy { $0["state"] as? String == "failed" && $0["status"] as? String == "error" })
            #expect(listed.allSatisfy { $0["kind"] as? String == "handler_error" && ($0["error"] as? String)?.hasPrefix("broken ") == true })
            #expect(listed.allSatisfy { $0["accepted_at"] is Int && $0["updated_at"] is Int && $0["attempts"] as? Int == 1 })

            let echoes = objects(try cli(cluster, ["tasks", "--name", "echo", "--json"]).1)
            #expect(echoes.compactMap { $0["id"] as? String }.sorted() == (0..<12).map { String(format: "e%02d", $0) })
            #expect(echoes.allSatisfy { $0["state"] as? String == "succeeded" })
            #expect(objects(try cli(cluster, ["tasks", "--state", "queued", "--json"]).1).isEmpty)

            let (tableStatus, table) = try cli(cluster, ["tasks"])
            #expect(tableStatus == 0)
            #expect(table.first?.hasPrefix("ID ") == true && table.first?.contains("STATE") == true, "\(table)")
            #expect(table.filter { $0.hasPrefix("e") || $0.hasPrefix("f") }.count == 15, "\(table)")
            #expect(table.contains { $0.hasPrefix("f0 ") && $0.contains("failed") && $0.hasSuffix("error: broken 0") }, "\(table)")
        }
    }

    @Test("--limit and pages of the broker's smaller than it give each task once; Producer.tasks follows the cursor to the end")
    func paging() async throws {
        try await withCluster(.init(consumers: 1, threads: 4)) { cluster in
            let producer = try cluster.makeProducer()
            try await runBatch(producer, echoes: 40, failures: 0)
            let all = (0..<40).map { String(format: "e%02d", $0) }

            let (status, paged) = try cli(cluster, ["tasks", "--json", "--page-size", "7", "--limit", "1000"])
            #expect(status == 0)
            // In the order they ended, which four threads need not keep: each once, in one order.
            let order = objects(paged).compactMap { $0["id"] as? String }
            #expect(order.sorted() == all, "six pages of at most 7, each task once: \(order)")
            let limited = objects(try cli(cluster, ["tasks", "--json", "--page-size", "7", "--limit", "25"]).1)
            #expect(limited.compactMap { $0["id"] as? String } == Array(order.prefix(25)))
            let (_, table) = try cli(cluster, ["tasks", "--limit", "5"])
            #expect(table.last == "… more tasks match; a larger --limit (now 5) shows them", "\(table)")

            var query = TaskQuery(state: .succeeded, limit: 9)
            var ids: [String] = []
            var pages = 0
            while pages < 20 {
                let page = try await producer.tasks(query)
                pages += 1
                #expect(page.tasks.count <= 9 && page.examined <= TaskPage.maxExamined)
                ids += page.tasks.map(\.id)
                guard let next = page.nextCursor else { break }
                query.cursor = next
            }
            #expect(ids == order && pages == 5)
        }
    }

    @Test("A bad query is answered with an error naming its field, a bad --state is a usage error listing the states, and the broker goes on")
    func badRequests() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            await #expect(throws: ProducerError.protocolError("limit must be a whole number from 1 to 1000, not 0")) {
                try await producer.tasks(TaskQuery(limit: 0))
            }
            await #expect(throws: ProducerError.protocolError("cursor 'page-2' is not one this broker gave: pass the previous page's next_cursor as it came, or none for the first page")) {
                try await producer.tasks(TaskQuery(cursor: "page-2"))
            }
            let (status, output) = try cli(cluster, ["tasks", "--state", "stuck"])
            #expect(status == 64)
            #expect(output.contains("error: unknown --state 'stuck': use one of queued, scheduled, reserved, running, succeeded, failed, cancelled, dead"), "\(output)")
            #expect(try cli(cluster, ["tasks", "--since", "yesterday"]).0 == 64)
            try await runBatch(producer, echoes: 1, failures: 0)
            #expect(try await producer.tasks(TaskQuery()).tasks.map(\.id) == ["e00"])
            let recent = try await producer.tasks(TaskQuery(sinceMilliseconds: Int64(Date().timeIntervalSince1970 * 1000) + 60_000))
            #expect(recent.tasks.isEmpty, "nothing ended a minute from now")
        }
    }

    @Test("A broker without the tasks capability: the producer says so, from its HELLO at once or from its unknown-command ERROR")
    func brokerWithoutTasks() async throws {
        for answersHello in [true, false] {
            let broker = try OlderBroker(answersHello: answersHello)
            defer { broker.stop() }
            var configuration = ProducerConfiguration(broker: broker.endpoint)
            configuration.requestTimeout = .seconds(60)
            try await withProducer(configuration, logger: testLogger) { producer in
                if answersHello {
                    // Its HELLO comes in answer to the producer's on connecting.
                    let deadline = ContinuousClock.now + .seconds(10)
                    while broker.hellos.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let started = ContinuousClock.now
                await #expect(throws: ProducerError.protocolError("the broker at \(broker.endpoint) cannot list tasks (it does not take TASKS, capability 'tasks'): it is older than this producer; upgrade the broker")) {
                    try await producer.tasks(TaskQuery())
                }
                #expect(started.duration(to: .now) < .seconds(30), "well before the 60 s request timeout")
                #expect(broker.tasksReceived.load(ordering: .relaxed) == (answersHello ? 0 : 1), "sent only when the broker's capabilities are not known")
            }
        }
    }
}

/// A broker from before `TASKS`, on a thread of its own: it answers HELLO with capabilities
/// without `tasks` (or ignores it), and TASKS as an unknown command.
private final class OlderBroker: Sendable {
    let hellos = Atomic<Int>(0)
    let tasksReceived = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let bound = Mutex<String?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    /// Where it listens.
    var endpoint: String { bound.withLock { $0 } ?? "" }

    init(answersHello: Bool) throws {
        // The socket lives on the thread that answers (sockets are not shared between threads).
        Thread { [self] in serve(answersHello: answersHello) }.start()
        ready.wait()
        guard bound.withLock({ $0 }) != nil else { throw ZMQError(code: 0, operation: "bind the older broker's socket") }
    }

    private func serve(answersHello: Bool) {
        guard let context = try? Context(), let router = try? Socket(context, type: .router),
              (try? router.set(.linger, 0)) != nil, (try? router.bind("tcp://127.0.0.1:*")) != nil else {
            ready.signal()
            return
        }
        bound.withLock { $0 = try? router.lastEndpoint }
        ready.signal()
        var poller = Poller()
        poller.add(router)
        let hello = Hello(role: .broker, capabilities: [.leases, .purge, .revoke], software: "conveyor-older").json
        while !stopped.load(ordering: .relaxed) {
            guard (try? poller.poll(timeout: .milliseconds(20))) ?? 0 > 0,
                  let frames = try? router.receiveMultipart(flags: .dontWait), frames.count >= 3 else { continue }
            let peer = frames[0].bytes
            switch frames[2].bytes.first {
            case Command.hello.rawValue?:
                hellos.add(1, ordering: .relaxed)
                if answersHello { _ = try? router.send(multipart: [peer, Array("CVY3".utf8), [Command.hello.rawValue], Array(hello.utf8)]) }
            case Command.tasks.rawValue?:
                tasksReceived.add(1, ordering: .relaxed)
                _ = try? router.send(multipart: [peer, Array("CVY3".utf8), [Command.error.rawValue], Array("unknown command 0xb".utf8)])
            default: break
            }
        }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
