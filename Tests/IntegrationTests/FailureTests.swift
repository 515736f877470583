import ConveyorProtocol
import ConveyorTesting
import Foundation
import ConveyorProducer
import Testing

/// Processes dying and stopping while they hold work: nothing accepted is lost.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FailureTests {
    @Test("kill -9 of one of two consumers mid-batch: every task still returns exactly one ok result")
    func killConsumerMidBatch() async throws {
        try await withCluster(.init(consumers: 2, threads: 4, consumerArguments: ["--heartbeat-ms", "250"])) { cluster in
            let producer = try cluster.makeProducer { $0.window = 1000 }
            let count = 20_000
            let victim = cluster.consumers[0]
            let done = Counter()
            let results = try await withThrowingTaskGroup(of: (Int, TaskResult).self) { group in
                var results: [Int: TaskResult] = [:]
                var running = 0
                for i in 0..<count {
                    if running >= 1000, let (index, result) = try await group.next() {
                        results[index] = result
                        running -= 1
                        if await done.increment() == 3000 { victim.send(SIGKILL) }
                    }
                    running += 1
                    group.addTask {
                        let handle = try await producer.submit("echo", json: "\(i)")
                        return (i, await handle.result())
                    }
                }
                for try await (index, result) in group { results[index] = result }
                return results
            }
            #expect(!victim.isRunning)
            #expect(results.count == count)
            let bad = results.filter { $0.value.status != .ok || $0.value.body.text != "\($0.key)" }
            #expect(bad.isEmpty, "first bad: \(bad.first.map { "\($0.key): \($0.value)" } ?? "")")
            let stats = try await cluster.stats()
            #expect(stats.totals.completed == count)
        }
    }

    @Test("SIGTERM drains a consumer: its running sleep tasks finish and return")
    func drainOnSigterm() async throws {
        try await withCluster(.init(consumers: 1, threads: 3, consumerArguments: ["--log-level", "debug"])) { cluster in
            let producer = try cluster.makeProducer()
            var handles: [TaskHandle] = []
            for _ in 0..<3 { handles.append(try await producer.submit("sleep", json: #"{"ms":1200}"#)) }
            let consumer = cluster.consumers[0]
            // Tasks not yet started when SIGTERM arrives are handed back, not run: wait for all three.
            try await waitUntil { consumer.output.filter { $0.contains("task started") }.count == 3 }
            consumer.send(SIGTERM)
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok)
                #expect(result.body.text == #"{"slept_ms":1200}"#)
            }
            #expect(consumer.waitForExit(timeout: .seconds(20)) == 0)
        }
    }

    @Test("the supervisor restarts a consumer process that dies")
    func supervisorRestartsChild() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            try cluster.startConsumer(threads: 2, processes: 2)
            try await cluster.waitForConsumers(2)
            let before = try await cluster.stats().consumers.map(\.pid)
            kill(Int32(before[0]), SIGKILL)
            try await waitUntil(timeout: .seconds(30)) {
                guard let stats = try? await cluster.stats() else { return false }
                let pids = Set(stats.consumers.map(\.pid))
                return pids.count == 2 && !pids.contains(before[0])
            }
            let producer = try cluster.makeProducer()
            #expect(try await producer.submit("echo", json: "1").result().status == .ok)
        }
    }
}

actor Counter {
    private var value = 0
    func increment() -> Int {
        value += 1
        return value
    }
}
