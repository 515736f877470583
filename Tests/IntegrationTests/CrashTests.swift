import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// The durable broker under `kill -9`: real broker, consumer and CLI processes, a real data
/// directory. kill -9 keeps the page cache, so these tests also cut the journal back to what the
/// broker last reported as synced (`journal.synced`) and append garbage, which is what a power
/// loss can leave; `--fsync never` under the same cut is the negative control.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct CrashTests {
    static let segmentBytes = 64 << 10

    @Test("kill -9 at 10 journal offsets during 20,000-task no-wait batches (one during a compaction): every accepted task completes once")
    func killDuringBatches() async throws {
        let seed = UInt64(Date().timeIntervalSince1970)
        var random = Random(seed: seed)
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-exec-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        let arguments = ["--journal-segment-bytes", "\(Self.segmentBytes)", "--keep-results", "1000000"]
        try await withCluster(.init(consumers: 0, brokerArguments: arguments)) { cluster in
            let directory = try #require(cluster.dataDirectory)
            var expected: [String: String] = [:]
            var killedDuringCompaction = false
            var batch = 0
            for point in 0..<10 {
                let duringCompaction = point == 3
                var killed = false
                while !killed {
                    let lines = (0..<20_000).map { #"{"batch":\#(batch),"i":\#($0)}"# }
                    batch += 1
                    let start = Durability.position(directory, segmentBytes: Self.segmentBytes)
                    let target = start + random.below(20_000 * 120)
                    let submit = try Durability.startBatch(cluster, input: try Durability.inputFile(lines, in: directory))
                    let deadline = Date().addingTimeInterval(60)
                    while submit.isRunning, Date() < deadline {
                        if duringCompaction {
                            if Durability.files(directory).contains(where: { $0.hasSuffix(".tmp") }) { killed = true }
                        } else if Durability.position(directory, segmentBytes: Self.segmentBytes) >= target {
                            killed = true
                        }
                        if killed { break }
                        usleep(200)
                    }
                    if killed {
                        Durability.killBroker(cluster)
                        if duringCompaction { killedDuringCompaction = true }
                        submit.send(SIGKILL)
                    }
                    _ = submit.waitForExit(timeout: .seconds(30))
                    for (index, id) in Durability.acceptedIDs(submit.output) { expected[id] = lines[index] }
                    if killed { try cluster.restartBroker() }
                    if !killed && !duringCompaction { killed = true }  // the batch ended before its kill point
                    if batch > 40 { break }
                }
            }
            #expect(killedDuringCompaction, "no kill landed during a compaction")
            #expect(expected.count > 20_000, "too few tasks were accepted (\(expected.count))")
            try cluster.startConsumer(threads: 4, arguments: ["--execution-log", log])
            let producer = try cluster.makeProducer()
            try await Durability.expectAllDone(producer, expected)
            let executions = Durability.executions(log)
            let missing = expected.keys.filter { executions[$0] == nil }
            #expect(missing.isEmpty, "accepted tasks that never ran: \(missing.prefix(5))")
            print("kill-during-batches (seed \(seed)): \(expected.count) tasks accepted across \(batch) batches and 10 kills, all completed; \(executions.values.filter { $0 > 1 }.count) ran more than once")
        }
    }

    @Test("kill -9 five times mid-batch with consumers working: every task ends once at its producer, with its own result")
    func killWhileWorking() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-exec-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        let fast = ["--heartbeat-ms", "200"]
        try await withCluster(.init(consumers: 2, threads: 4, brokerArguments: fast,
                                    consumerArguments: fast + ["--execution-log", log])) { cluster in
            let producer = try cluster.makeProducer { $0.heartbeatInterval = .milliseconds(200) }
            // Short sleeps, so that the work spans every kill: 4,000 × 1-7 ms on 8 threads is about 2 s.
            // Each crash while a task runs counts as an attempt (recovery requeues it so), and so
            // does a dispatch to a consumer's old connection: room for 5 crashes of the broker.
            let options = TaskOptions(maxAttempts: 10)
            let tasks = (0..<4_000).map { TaskSubmission("sleep", json: RawJSON(#"{"ms":\#(1 + $0 % 7)}"#), options: options) }
            let killer = Task {
                var random = Random(seed: 5)
                for _ in 0..<5 {
                    try await Task.sleep(for: .milliseconds(150 + random.below(350)))
                    Durability.killBroker(cluster)
                    try cluster.restartBroker()
                }
            }
            let handles = try await producer.submit(batch: tasks)
            var bodies: [String: String] = [:]
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok, "task \(i): \(result)")
                #expect(result.body.text == #"{"slept_ms":\#(1 + i % 7)}"#, "task \(i)")
                bodies[handle.id] = result.body.text
            }
            try await killer.value
            #expect(bodies.count == tasks.count)
            let executions = Durability.executions(log)
            #expect(handles.allSatisfy { executions[$0.id] != nil }, "every task ran at least once")
            print("kill-while-working: 4,000 tasks through 5 kills; \(executions.values.filter { $0 > 1 }.count) ran more than once")
        }
    }

    @Test("cut back to the synced offset plus garbage: --fsync always keeps every accepted task, --fsync never loses them",
          arguments: ["always", "never"])
    func cutToSynced(policy: String) async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--fsync", policy])) { cluster in
            let directory = try #require(cluster.dataDirectory)
            let lines = (0..<3_000).map { #"{"n":\#($0)}"# }
            let submit = try Durability.startBatch(cluster, input: try Durability.inputFile(lines, in: directory))
            #expect(submit.waitForExit(timeout: .seconds(60)) == 0)
            let accepted = Durability.acceptedIDs(submit.output)
            #expect(accepted.count == lines.count)
            Durability.killBroker(cluster)
            // What a power loss may leave: the durable part, then anything.
            let mark = try #require(Durability.syncedMark(directory))
            for name in Durability.files(directory) where name.hasPrefix("segment-") {
                if let number = UInt64(name.dropFirst(8).prefix(10)), number > mark.segment {
                    try FileManager.default.removeItem(atPath: directory + "/" + name)
                }
            }
            let path = Durability.segmentPath(directory, mark.segment)
            var kept = Array(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(mark.offset))
            var random = Random(seed: 9)
            kept += (0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            try Data(kept).write(to: URL(fileURLWithPath: path))
            try cluster.restartBroker()
            let stats = try await cluster.stats()
            if policy == "always" {
                #expect(stats.queuedTotal == lines.count, "with fsync always every accepted task survives the cut")
                #expect(cluster.broker!.output.contains { $0.contains("hold no complete record") || $0.contains("dropped") },
                        "the broker says what it dropped")
            } else {
                #expect(stats.queuedTotal < lines.count, "the negative control: fsync never loses tasks under the cut")
            }
            print("cut-to-synced (fsync \(policy)): \(stats.queuedTotal) of \(lines.count) accepted tasks survived")
        }
    }

    @Test("after kill -9 and a restart, resubmitting a finished id returns its kept result without running it again")
    func dedupeSurvivesRestart() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-exec-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--execution-log", log])) { cluster in
            let first = try cluster.makeProducer()
            let result = try await first.submit("echo", json: #"{"once":true}"#, id: "only-once").result()
            #expect(result.status == .ok)
            Durability.killBroker(cluster)
            try cluster.restartBroker()
            let second = try cluster.makeProducer()
            let again = try await second.submit("echo", json: #"{"once":"different args"}"#, id: "only-once").result()
            #expect(again.status == .ok)
            #expect(again.body.text == #"{"once":true}"#)
            let report = try await second.status(id: "only-once")
            #expect(report.state == .done)
            #expect(Durability.executions(log)["only-once"] == 1)
        }
    }

    @Test("dead letters and delayed retries survive kill -9")
    func deadLettersSurvive() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let options = TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 10)
            let failed = try await producer.submit("fail", json: #"{"message":"boom"}"#, options: options).result()
            #expect(failed.status == .error)
            #expect(try await cluster.stats().deadLetterTotal == 1)
            Durability.killBroker(cluster)
            try cluster.restartBroker()
            let stats = try await cluster.stats()
            #expect(stats.deadLetterTotal == 1)
            #expect(stats.deadLetters.first?.reason.contains("boom") == true)
        }
    }

    @Test("a second broker on a data directory in use exits at once, naming the holder")
    func secondBroker() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let directory = try #require(cluster.dataDirectory)
            let started = ContinuousClock.now
            let second = try ManagedProcess(name: "second", executable: cluster.executable,
                                            arguments: ["broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                                                        "--data-dir", directory])
            let status = second.waitForExit(timeout: .seconds(20))
            #expect(status == 1)
            #expect(started.duration(to: .now) < .seconds(10))
            let pid = cluster.broker!.pid
            #expect(second.output.contains { $0.contains("in use by another broker (pid \(pid)") }, "\(second.output)")
        }
    }
}
