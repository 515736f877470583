import ConveyorProtocol
import ConveyorTesting
import Foundation
import ConveyorProducer
import Testing

/// The whole pipeline with real processes: a broker and consumer processes started by the
/// harness, tasks submitted through the Producer library.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PipelineTests {
    @Test("10,000 echo tasks through 2 processes × 4 threads each return once, correct, spread over processes and threads")
    func echoThroughTwoProcesses() async throws {
        try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
            let producer = try cluster.makeProducer { $0.window = 500 }
            let count = 10_000
            let results = try await withThrowingTaskGroup(of: (Int, TaskResult).self) { group in
                var results: [Int: TaskResult] = [:]
                var running = 0
                for i in 0..<count {
                    if running >= 500, let (index, result) = try await group.next() {
                        results[index] = result
                        running -= 1
                    }
                    running += 1
                    group.addTask {
                        let handle = try await producer.submit("echo", json: #"{"i":\#(i),"pad":"xxxxxxxx"}"#)
                        return (i, await handle.result())
                    }
                }
                for try await (index, result) in group { results[index] = result }
                return results
            }
            #expect(results.count == count)
            var perProcess: [Int: Set<Int>] = [:]
            for (i, result) in results {
                #expect(result.status == .ok)
                #expect(result.body.text == #"{"i":\#(i),"pad":"xxxxxxxx"}"#)
                if let pid = result.info?.pid, let thread = result.info?.thread {
                    perProcess[pid, default: []].insert(thread)
                }
            }
            #expect(perProcess.count == 2, "both consumer processes ran tasks")
            for (pid, threads) in perProcess {
                #expect(threads.count > 1, "process \(pid) ran tasks on more than one thread")
            }
            let stats = try await cluster.stats()
            #expect(stats.totals.completed == count)
            #expect(stats.totals.duplicatesDropped == 0)
        }
    }

    @Test("fail, malformed JSON and undecodable args give error results that say what was wrong")
    func errorResults() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()

            let failed = try await producer.submit("fail", json: #"{"message":"disk on fire"}"#).result()
            #expect(failed.status == .error)
            #expect(failed.errorMessage == "disk on fire")
            #expect(failed.errorKind == .handlerError)

            let malformed = try await producer.submit("echo", json: RawJSON("{\"a\": tru")).result()
            #expect(malformed.status == .error)
            #expect(malformed.errorKind == .malformedJSON)
            #expect(malformed.errorMessage?.contains("not valid JSON") == true)

            let undecodable = try await producer.submit("sleep", json: #"{"ms":"soon"}"#).result()
            #expect(undecodable.status == .error)
            #expect(undecodable.errorKind == .badArgs)
            #expect(undecodable.errorMessage?.contains("'ms'") == true)

            let missing = try await producer.submit("sha256", json: #"{"seed":"x"}"#).result()
            #expect(missing.errorKind == .badArgs)
            #expect(missing.errorMessage?.contains("iterations") == true)

            // The consumer is still healthy afterwards.
            let ok = try await producer.submit("echo", json: "[1,2,3]").result()
            #expect(ok.status == .ok)
            #expect(ok.body.text == "[1,2,3]")
        }
    }

    @Test("a task no consumer serves waits, then times out saying no consumer serves it")
    func unknownTaskTimesOut() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            let result = try await producer.submit("resize-image", json: "{}",
                                                   options: TaskOptions(timeoutMilliseconds: 500)).result()
            #expect(result.status == .timeout)
            #expect(result.errorMessage?.contains("no consumer serves 'resize-image'") == true)
        }
    }

    @Test("cancel removes a queued task; a running task cannot be cancelled")
    func cancelQueued() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            let running = try await producer.submit("sleep", json: #"{"ms":1500}"#)
            try await waitUntil { (try? await running.status().state) == .running }
            let queued = try await producer.submit("echo", json: #"{"x":1}"#)
            #expect(try await queued.status().state == .queued)
            #expect(try await queued.cancel() == .cancelled)
            let cancelled = await queued.result()
            #expect(cancelled.status == .cancelled)
            #expect(try await running.cancel() == .running)
            #expect(await running.result().status == .ok)
            #expect(try await running.cancel() == .done)
            #expect(try await producer.cancel(id: "no-such-task") == .unknown)
        }
    }

    @Test("queued tasks run highest priority first, first-in first-out within a priority")
    func priorityOrder() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            let blocker = try await producer.submit("sleep", json: #"{"ms":1000}"#)
            try await waitUntil { (try? await blocker.status().state) == .running }
            let order = OrderRecorder()
            let priorities: [Int32] = [0, 5, 1, 9, 5, 0]
            var handles: [(Int, TaskHandle)] = []
            for (index, priority) in priorities.enumerated() {
                let handle = try await producer.submit("echo", json: "\(index)", options: TaskOptions(priority: priority))
                handles.append((index, handle))
            }
            await withTaskGroup(of: Void.self) { group in
                for (index, handle) in handles {
                    group.addTask {
                        _ = await handle.result()
                        await order.append(index)
                    }
                }
            }
            // 9 first; the two 5s in submission order; then 1; then the two 0s in order.
            #expect(await order.values == [3, 1, 4, 2, 0, 5])
        }
    }

    @Test("a submit past --max-queued is rejected with a reason")
    func maxQueuedRejects() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--max-queued", "5", "--queue-share", "100"])) { cluster in
            let producer = try cluster.makeProducer()
            for i in 0..<5 {
                _ = try await producer.submit("echo", json: "\(i)")
            }
            await #expect {
                _ = try await producer.submit("echo", json: "6")
            } throws: { error in
                guard case ProducerError.rejected(_, let reason) = error else { return false }
                return reason.contains("queue full") && reason.contains("--max-queued 5")
            }
            let stats = try await cluster.stats()
            #expect(stats.queuedTotal == 5)
            #expect(stats.totals.rejected == 1)
        }
    }

    @Test("the same id submitted twice at once from one producer shares one task and leaks no window slot")
    func concurrentDuplicateSubmit() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer { $0.window = 1 }
            async let first = producer.submit("sleep", json: #"{"ms":200}"#, id: "twice")
            async let second = producer.submit("sleep", json: #"{"ms":200}"#, id: "twice")
            let (a, b) = try await (first, second)
            #expect(await a.result().status == .ok)
            #expect(await b.result().status == .ok)
            // The window of one is free again.
            #expect(try await producer.submit("echo", json: "3").result().status == .ok)
            #expect(try await cluster.stats().totals.submitted == 2)
        }
    }

    @Test("submitting the same id twice is the same task: one execution, one result")
    func resubmissionIsIdempotent() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let first = try await producer.submit("echo", json: #"{"v":1}"#, id: "same-id-1")
            #expect(await first.result().status == .ok)
            let again = try await producer.submit("echo", json: #"{"v":1}"#, id: "same-id-1")
            #expect(await again.result().body.text == #"{"v":1}"#)
            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == 1)
        }
    }
}

/// Polls `condition` every 20 ms until it holds, failing after `timeout`.
func waitUntil(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition did not hold within \(timeout)")
    throw CancellationError()
}

actor OrderRecorder {
    private(set) var values: [Int] = []
    func append(_ value: Int) { values.append(value) }
}
