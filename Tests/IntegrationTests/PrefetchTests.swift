import ConveyorProcess
import ConveyorProtocol
import ConveyorTesting
import Foundation
import ConveyorProducer
import Synchronization
import Testing

/// Automatic prefetch with real processes: the consumer measures its handlers and re-announces
/// its capacity (READY) to the broker, which shows it in `stats`.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ConsumerPrefetchTests {
    /// Time for a few of the consumer's pace checks (every 100 ms) to pass after the work is done,
    /// before checking that the capacity did *not* move. Not a speed assertion: a wait for an
    /// absence, which has no event to wait on.
    static let settle: Duration = .milliseconds(500)

    /// What `stats` said about the only consumer, sampled every 20 ms while `body` runs.
    final class Sampler: Sendable {
        private let samples = Mutex<[BrokerStatistics.Consumer]>([])
        var capacities: [Int] { samples.withLock { $0.map(\.capacity) } }
        var inFlight: [Int] { samples.withLock { $0.map(\.inFlight) } }
        var count: Int { samples.withLock { $0.count } }

        func sample<T>(_ cluster: Cluster, while body: () async throws -> T) async throws -> T {
            let polling = Task {
                while !Task.isCancelled {
                    if let consumer = try? await cluster.stats().consumers.first {
                        samples.withLock { $0.append(consumer) }
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { polling.cancel() }
            let value = try await body()
            polling.cancel()
            _ = await polling.value
            return value
        }
    }

    static func echoBatch(_ count: Int) -> [TaskSubmission] {
        (0..<count).map { TaskSubmission("echo", json: RawJSON(#"{"i":\#($0)}"#)) }
    }

    static func capacity(_ cluster: Cluster) async throws -> Int {
        let consumers = try await cluster.stats().consumers
        try #require(consumers.count == 1)
        return consumers[0].capacity
    }

    @Test("a consumer whose prefetch grew on quick tasks hands back the slow ones it cannot start, for another consumer to run")
    func surplusHandedBackWhenThePaceSlows() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            // Consumer A (1 thread, auto prefetch) learns a quick pace: its capacity grows.
            let producer = try cluster.makeProducer { $0.window = 1_000 }
            for handle in try await producer.submit(batch: Self.echoBatch(3_000)) {
                #expect(await handle.result().status == .ok)
            }
            try await waitUntil { ((try? await Self.capacity(cluster)) ?? 0) > 20 }
            let first = try #require(try await cluster.stats().consumers.first)
            // Consumer B (2 threads, no prefetch) joins.
            try cluster.startConsumer(threads: 2, arguments: ["--prefetch", "0"])
            try await cluster.waitForConsumers(2)
            // 40 tasks of 50 ms: B takes 2, A takes one per idle thread and, with credit to spare,
            // holds the rest. Once A has measured the slow pace it lowers its capacity and hands
            // back what it has not started; B runs much of it. Without the hand-back A would run
            // all but B's first few, one after another.
            let handles = try await producer.submit(batch: (0..<40).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":50}"#)) })
            var perProcess: [Int: Int] = [:]
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok)
                perProcess[result.info?.pid ?? 0, default: 0] += 1
            }
            let ranOnB = handles.count - (perProcess[first.pid] ?? 0)
            #expect(ranOnB >= 10, "B ran \(ranOnB) of 40: \(perProcess)")
            let totals = try await cluster.stats()
            #expect(totals.consumers.count == 2)
        }
    }

    @Test("auto prefetch (the default): quick tasks raise the capacity above the threads; slow ones bring it back")
    func automaticRisesForQuickTasks() async throws {
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--log-level", "debug"])) { cluster in
            // Nothing measured yet: threads + 0.
            #expect(try await Self.capacity(cluster) == 2)
            let consumer = try #require(cluster.consumers.first)

            let producer = try cluster.makeProducer { $0.window = 1_000 }
            let handles = try await producer.submit(batch: Self.echoBatch(4_000))
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok)
                #expect(result.body.text == #"{"i":\#(i)}"#)
            }
            try await waitUntil { ((try? await Self.capacity(cluster)) ?? 0) > 2 }
            let raised = try await Self.capacity(cluster)
            #expect(raised > 2)
            #expect(raised <= 2 + 1_000, "at most threads + the automatic maximum")
            #expect(consumer.output.contains { $0.contains("new capacity") })

            // Handlers now take 50 ms, longer than the 5 ms buffer: back to the thread count.
            let slow = try await producer.submit(batch: (0..<12).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":50}"#)) })
            for handle in slow {
                let result = await handle.result()
                #expect(result.status == .ok)
                #expect(result.body.text == #"{"slept_ms":50}"#)
            }
            try await waitUntil { (try? await Self.capacity(cluster)) == 2 }

            // And the consumer still works at that capacity.
            let more = try await producer.submit(batch: Self.echoBatch(100))
            for handle in more { #expect(await handle.result().status == .ok) }
        }
    }

    @Test("--prefetch 0 keeps the capacity at exactly the thread count, however quick the tasks")
    func fixedZeroStaysAtThreads() async throws {
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--prefetch", "0", "--log-level", "debug"])) { cluster in
            #expect(try await Self.capacity(cluster) == 2)
            let consumer = try #require(cluster.consumers.first)
            let producer = try cluster.makeProducer { $0.window = 1_000 }
            let sampler = Sampler()
            try await sampler.sample(cluster) {
                let handles = try await producer.submit(batch: Self.echoBatch(4_000))
                for (i, handle) in handles.enumerated() {
                    let result = await handle.result()
                    #expect(result.status == .ok)
                    #expect(result.body.text == #"{"i":\#(i)}"#)
                }
            }
            try await Task.sleep(for: Self.settle)
            #expect(try await Self.capacity(cluster) == 2)
            #expect(sampler.count > 0)
            #expect(sampler.capacities.allSatisfy { $0 == 2 }, "capacities seen: \(Set(sampler.capacities))")
            #expect(sampler.inFlight.allSatisfy { $0 <= 2 }, "in flight seen: \(Set(sampler.inFlight))")
            #expect(!consumer.output.contains { $0.contains("new capacity") })
        }
    }

    @Test("the largest --prefetch the CLI accepts gives a consumer the broker takes (or the CLI refuses it up front)")
    func largestFixedPrefetch() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            // threads + prefetch is the capacity announced in READY.
            let consumer = try cluster.startConsumer(threads: 2, arguments: ["--prefetch", "100000"])
            try await waitUntil {
                if !consumer.isRunning { return true }
                return ((try? await cluster.stats().consumers.count) ?? 0) == 1
            }
            if !consumer.isRunning {
                // Refused at start: then it must say why, and fail.
                #expect(consumer.waitForExit(timeout: .seconds(5)) != 0)
                #expect(consumer.output.contains { $0.contains("--prefetch") })
                return
            }
            let producer = try cluster.makeProducer()
            let result = try await producer.submit("echo", json: "1", options: TaskOptions(timeoutMilliseconds: 10_000)).result()
            #expect(result.status == .ok, "\(result.body.text)")
        }
    }

    @Test("auto prefetch with 50 ms tasks (longer than the 5 ms buffer) keeps the capacity at the thread count")
    func automaticStaysForSlowTasks() async throws {
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--log-level", "debug"])) { cluster in
            #expect(try await Self.capacity(cluster) == 2)
            let consumer = try #require(cluster.consumers.first)
            let producer = try cluster.makeProducer()
            let sampler = Sampler()
            try await sampler.sample(cluster) {
                let handles = try await producer.submit(batch: (0..<20).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":50}"#)) })
                for handle in handles {
                    let result = await handle.result()
                    #expect(result.status == .ok)
                }
            }
            try await Task.sleep(for: Self.settle)
            #expect(try await Self.capacity(cluster) == 2)
            #expect(sampler.count > 0)
            #expect(sampler.capacities.allSatisfy { $0 == 2 }, "capacities seen: \(Set(sampler.capacities))")
            #expect(sampler.inFlight.allSatisfy { $0 <= 2 }, "in flight seen: \(Set(sampler.inFlight))")
            #expect(!consumer.output.contains { $0.contains("new capacity") })
        }
    }

    @Test("a prefetched task shows as reserved, cancel takes it back from the consumer at once, and stats count running and reserved apart")
    func reservedTasksCanBeCancelled() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            _ = try cluster.startConsumer(threads: 1, arguments: ["--prefetch", "4"])
            try await cluster.waitForConsumers(1)
            func cli(_ arguments: [String]) throws -> (Int32?, [String]) {
                let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
                let status = process.waitForExit(timeout: .seconds(20))
                _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
                return (status, process.output)
            }
            for n in 1...4 {
                #expect(try cli(["submit", "sleep", #"{"ms":3000}"#, "--no-wait", "--id", "r\(n)"]).0 == 0)
            }
            // t1 on the one thread; the others wait in the consumer's buffer.
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while try await cluster.stats().running < 4, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try cli(["status", "r1"]).1.contains { $0.contains(#""state":"running""#) })
            #expect(try cli(["status", "r3"]).1.contains { $0.contains(#""state":"reserved""#) })
            let asked = ContinuousClock.now
            let (cancelStatus, cancelOutput) = try cli(["cancel", "r3"])
            #expect(cancelStatus == 0 && cancelOutput.contains("cancelled"), "\(cancelOutput)")
            #expect(asked.duration(to: .now) < .seconds(3), "answered once the consumer handed it back, not after r1")
            #expect(try cli(["status", "r3"]).1.contains { $0.contains(#""status":"cancelled""#) })
            let (runningStatus, runningOutput) = try cli(["cancel", "r1"])
            #expect(runningStatus == 1 && runningOutput.contains("running"), "a task on a thread runs on: \(runningOutput)")
            let stats = try await cluster.stats()
            #expect(stats.running == 3 && stats.reserved == 2, "running \(stats.running), reserved \(stats.reserved ?? -1)")
            let text = try cli(["stats"]).1
            #expect(text.contains("running: 1") && text.contains { $0.hasPrefix("reserved: 2") }, "\(text)")
        }
    }
}
