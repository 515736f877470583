import ArgumentParser
import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorJournal
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import ConveyorProducer

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the benchmark workloads W1-W6 against a real broker and consumers, or the libzmq PUSH/PULL microbenchmark.",
        discussion: """
            Workloads (docs/BENCHMARKS.md describes them and how they are compared): \
            w1 echo throughput, 100,000 echo tasks, 1 consumer process × 4 threads (--shape), --window in flight; \
            w2 latency, 10,000 sequential echo round trips; \
            w3 blocking work, 2,000 × sleep 10 ms on 1 × 50 threads; \
            w4 CPU work, 400 × sha256 (20,000 iterations) on 1×1, 1×2 and 2×1; \
            w5 scale-out, 200,000 echo tasks from 2 producers on 4 × 4; \
            w6 memory, 1,000,000 echo tasks queued with no consumer, then drained. \
            Default: w1-w5. Every result is verified. --scale shrinks or grows the task counts (0.1 runs a tenth). \
            W1, W2, W3 and W5 also report the CPU time (user + system) of every process of the run over \
            the timed window (this process as the producer, the broker, each consumer process), per task.
            """)

    @Argument(help: "Workloads to run: w1 … w6, pushpull, or timers (what one metrics timer record costs).")
    var workloads: [String] = []

    @Flag(help: "Print JSON instead of a table.") var json = false
    @Option(help: "Multiply every task count by this.") var scale = 1.0
    @Option(help: "Tasks in flight per producer (W1, W5).") var window = 1_000
    @Option(help: "Messages for pushpull.") var messages = 1_000_000
    @Option(help: "Message size in bytes for pushpull.") var size = 100
    @Option(help: "Consumer prefetch: tasks the broker may send beyond the free threads, a number or auto (the consumer's default).")
    var prefetch = "auto"
    @Option(help: "Consumer processes × threads for W1, as PxT (default 1x4).")
    var shape = "1x4"
    @Option(help: "Run the broker durable, journaling to a temporary data dir with this fsync policy (always, interval:MS, never); without it the broker runs --in-memory.")
    var fsync: String?

    @Flag(help: "Record and serve metrics in the broker and the consumers (--metrics-listen 127.0.0.1:0): what metrics cost the hot path.")
    var metrics = false

    @Option(help: ArgumentHelp("W1 and W2 with this many echo tasks scheduled a day ahead (--delay) in the broker first: what pending delayed tasks cost the dispatch of ready ones.", valueName: "n"))
    var scheduled = 0

    /// How the bench's brokers keep their state, and whether they record metrics (and, with
    /// --scheduled, room for the scheduled tasks besides the bounds of the workloads).
    private var durability: [String] {
        (fsync.map { ["--fsync", $0] } ?? ["--in-memory"]) + metricsListen
            + (scheduled > 0 ? ["--max-queued", "\(scheduled + 1_000_000)", "--queue-share", "100"] : [])
    }
    private var metricsListen: [String] { metrics ? ["--metrics-listen", "127.0.0.1:0"] : [] }

    func validate() throws {
        let known = Set(["w1", "w2", "w3", "w4", "w5", "w6", "pushpull", "timers"])
        for name in workloads where !known.contains(name.lowercased()) {
            throw ValidationError("unknown workload '\(name)': choose from w1 w2 w3 w4 w5 w6 pushpull timers")
        }
        guard scale > 0 else { throw ValidationError("--scale must be positive") }
        guard scheduled >= 0, scheduled <= 10_000_000 else { throw ValidationError("--scheduled must be from 0 to 10000000") }
        guard Prefetch(prefetch) != nil else { throw ValidationError("--prefetch must be auto or a number 0-100000") }
        guard parsedShape != nil else { throw ValidationError("--shape must look like 2x4 (processes x threads)") }
        if let fsync, FsyncPolicy(fsync) == nil {
            throw ValidationError("--fsync must be always, interval:MS or never, not '\(fsync)'")
        }
    }

    func run() async throws {
        let names = workloads.isEmpty ? ["w1", "w2", "w3", "w4", "w5"] : workloads.map { $0.lowercased() }
        var results: [BenchResult] = []
        for name in names {
            let result: BenchResult
            switch name {
            case "pushpull":
                let run = try runPushPullBenchmark(messages: messages, size: size)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = .sortedKeys
                    printLine(String(decoding: try encoder.encode(run), as: UTF8.self))
                } else {
                    printLine(String(format: "pushpull: %d messages of %d bytes in %.3f s: %.0f msgs/s",
                                     run.messages, run.size, run.seconds, run.msgsPerSec))
                }
                continue
            case "timers":
                let run = await TimerBenchmark.run(records: count(2_000_000))
                printLine(json ? try encodedLine(run) : run.table)
                continue
            case "w1": result = try await w1()
            case "w2": result = try await w2()
            case "w3": result = try await w3()
            case "w4": result = try await w4()
            case "w5": result = try await w5()
            default: result = try await w6()
            }
            var described = result
            described.durability = fsync.map { "fsync \($0)" } ?? "in-memory"
            results.append(described)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                printLine(String(decoding: try encoder.encode(described), as: UTF8.self))
            } else {
                printLine(described.table)
            }
        }
        if results.contains(where: { !$0.verified }) {
            printError("error: some results were wrong or missing")
            throw ExitCode.failure
        }
    }

    private func encodedLine(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private func count(_ base: Int) -> Int { max(1, Int(Double(base) * scale)) }

    private func cluster(processes: Int, threads: Int) async throws -> Cluster {
        let cluster = try await Cluster(.init(consumers: 0, threads: threads, brokerArguments: durability))
        try cluster.startConsumer(threads: threads, processes: processes, arguments: ["--prefetch", "\(prefetch)"] + metricsListen)
        try await cluster.waitForConsumers(processes)
        return cluster
    }

    private var parsedShape: (processes: Int, threads: Int)? {
        let parts = shape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, (1...64).contains(parts[0]), (1...256).contains(parts[1]) else { return nil }
        return (parts[0], parts[1])
    }

    private func w1() async throws -> BenchResult {
        let (processes, threads) = parsedShape ?? (1, 4)
        let cluster = try await cluster(processes: processes, threads: threads)
        defer { cluster.tearDown() }
        let producer = try cluster.makeProducer { $0.window = window }
        if scheduled > 0 { try await ScheduledFill.fill(cluster, count: scheduled) }
        _ = await LoadRunner.run(producer: producer, tasks: (0..<1000).map(Workloads.echo), window: window)
        let report = await LoadRunner.run(producer: producer, tasks: (0..<count(100_000)).map(Workloads.echo), window: window,
                                          cpu: CPUProbe(cluster: cluster))
        return BenchResult(workload: "W1", shape: "\(processes)×\(threads), window \(window), prefetch \(prefetch)"
                               + (scheduled > 0 ? ", \(scheduled) scheduled" : ""),
                           report: report, cluster: cluster)
    }

    private func w2() async throws -> BenchResult {
        let cluster = try await cluster(processes: 1, threads: 4)
        defer { cluster.tearDown() }
        let producer = try cluster.makeProducer()
        if scheduled > 0 { try await ScheduledFill.fill(cluster, count: scheduled) }
        _ = await LoadRunner.sequential(producer: producer, tasks: (0..<100).map(Workloads.echo))
        let report = await LoadRunner.sequential(producer: producer, tasks: (0..<count(10_000)).map(Workloads.echo),
                                                 cpu: CPUProbe(cluster: cluster))
        return BenchResult(workload: "W2", shape: "1×4, one in flight" + (scheduled > 0 ? ", \(scheduled) scheduled" : ""),
                           report: report, cluster: cluster)
    }

    private func w3() async throws -> BenchResult {
        let cluster = try await cluster(processes: 1, threads: 50)
        defer { cluster.tearDown() }
        let producer = try cluster.makeProducer()
        let report = await LoadRunner.run(producer: producer, tasks: (0..<count(2_000)).map { _ in Workloads.sleep(ms: 10) },
                                          window: window, cpu: CPUProbe(cluster: cluster))
        return BenchResult(workload: "W3", shape: "1×50", report: report, cluster: cluster)
    }

    private func w4() async throws -> BenchResult {
        let n = count(400)
        let tasks = (0..<n).map { i in
            Workloads.sha256(seed: i, iterations: 20_000,
                             expected: BuiltinTasks.iteratedSHA256(seed: "\(i)", iterations: 20_000))
        }
        var combined = BenchResult(workload: "W4", shape: "1×1, 1×2, 2×1", report: LoadReport(), cluster: nil)
        for (processes, threads) in [(1, 1), (1, 2), (2, 1)] {
            let cluster = try await cluster(processes: processes, threads: threads)
            let producer = try cluster.makeProducer()
            let report = await LoadRunner.run(producer: producer, tasks: tasks, window: window)
            let part = BenchResult(workload: "W4", shape: "\(processes)×\(threads)", report: report, cluster: cluster)
            cluster.tearDown()
            combined.parts.append(part)
            combined.verified = combined.verified && part.verified
        }
        combined.wallSeconds = combined.parts.map(\.wallSeconds).reduce(0, +)
        return combined
    }

    private func w5() async throws -> BenchResult {
        let cluster = try await cluster(processes: 4, threads: 4)
        defer { cluster.tearDown() }
        let perProducer = count(100_000)
        let producers = try (0..<2).map { _ in try cluster.makeProducer { $0.window = window } }
        let started = ContinuousClock.now
        let probe = CPUProbe(cluster: cluster)
        let cpuBefore = probe.sample()
        let reports = await withTaskGroup(of: LoadReport.self) { group in
            for (p, producer) in producers.enumerated() {
                group.addTask {
                    await LoadRunner.run(producer: producer,
                                         tasks: (0..<perProducer).map { Workloads.echo(p * perProducer + $0) }, window: window)
                }
            }
            return await group.reduce(into: [LoadReport]()) { $0.append($1) }
        }
        var report = LoadReport()
        reports.forEach { report.merge($0) }
        report.wallSeconds = started.duration(to: .now).seconds
        report.cpu = probe.report(since: cpuBefore, tasks: report.completed, wallSeconds: report.wallSeconds)
        return BenchResult(workload: "W5", shape: "4×4, 2 producers", report: report, cluster: cluster)
    }

    private func w6() async throws -> BenchResult {
        let queued = count(1_000_000)
        let cluster = try await Cluster(.init(consumers: 0, brokerArguments: ["--max-queued", "\(queued + 1000)"] + durability))
        defer { cluster.tearDown() }
        let brokerPID = cluster.broker!.pid
        let before = ProcessMemory.residentBytes(pid: brokerPID) ?? 0
        let producer = try cluster.makeProducer { $0.window = queued + 1000 }
        let tasks = (0..<queued).map(Workloads.echo)
        // Submit everything with no consumer online, then measure, then drain.
        async let report = LoadRunner.run(producer: producer, tasks: tasks, window: queued + 1000)
        var waited = 0
        while waited < 6000 {
            if let stats = try? await cluster.stats(), stats.queuedTotal >= queued { break }
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        let full = ProcessMemory.residentBytes(pid: brokerPID) ?? 0
        let consumer = try cluster.startConsumer(threads: 4)
        try await cluster.waitForConsumers(1)
        let idleConsumer = ProcessMemory.residentBytes(pid: consumer.pid) ?? 0
        let finished = await report
        var result = BenchResult(workload: "W6", shape: "\(queued) queued, then 1×4", report: finished, cluster: cluster)
        let payload = Workloads.echo(0).args.bytes.count
        result.memory = .init(
            brokerBytesPerQueuedTask: (Double(full) - Double(before)) / Double(queued) - Double(payload),
            brokerIdleBytes: before, brokerFullBytes: full, consumerIdleBytes: idleConsumer)
        return result
    }
}

/// One workload's figures, for the table and for `--json`.
struct BenchResult: Codable {
    struct Memory: Codable {
        var brokerBytesPerQueuedTask: Double
        var brokerIdleBytes: UInt64
        var brokerFullBytes: UInt64
        var consumerIdleBytes: UInt64
    }

    var workload: String
    var shape: String
    var tasks: Int
    var verified: Bool
    var wallSeconds: Double
    var tasksPerSecond: Double
    var latencyMicroseconds: [String: UInt64]
    var tasksPerProcess: [String: Int]
    var threadsUsed: Int
    var peakRSSBytes: [String: UInt64]
    var memory: Memory?
    var parts: [BenchResult] = []
    var firstError: String?
    /// CPU time of every process over the timed window, per task (docs/BENCHMARKS.md, "CPU per task").
    var cpu: CPUReport?
    /// How the broker kept its state: `in-memory`, or `fsync POLICY` with a journal.
    var durability: String?

    init(workload: String, shape: String, report: LoadReport, cluster: Cluster?) {
        self.workload = workload
        self.shape = shape
        tasks = report.total
        verified = report.allVerified
        wallSeconds = report.wallSeconds
        tasksPerSecond = report.throughput
        let h = report.latency
        latencyMicroseconds = h.totalCount == 0 ? [:] : [
            "p50": h.valueAtPercentile(50), "p90": h.valueAtPercentile(90), "p99": h.valueAtPercentile(99), "max": h.max,
        ]
        tasksPerProcess = report.perProcess
        threadsUsed = report.perThread.count
        firstError = report.firstError
        cpu = report.cpu
        var rss: [String: UInt64] = [:]
        if let cluster {
            if let broker = cluster.broker, let peak = ProcessMemory.peakResidentBytes(pid: broker.pid) { rss["broker"] = peak }
            for pid in ProcessMemory.descendants(of: cluster.consumers.map(\.pid)) {
                if let peak = ProcessMemory.peakResidentBytes(pid: pid) { rss["consumer \(pid)"] = peak }
            }
        }
        peakRSSBytes = rss
    }

    var table: String {
        if !parts.isEmpty {
            return parts.map(\.table).joined(separator: "\n")
        }
        var line = String(format: "%@ %@: %d tasks%@ in %.3f s = %.0f tasks/s", workload, shape, tasks,
                          verified ? " verified" : " NOT VERIFIED", wallSeconds, tasksPerSecond)
        if let p50 = latencyMicroseconds["p50"], let p99 = latencyMicroseconds["p99"], let max = latencyMicroseconds["max"] {
            line += "  latency µs p50 \(p50) p99 \(p99) max \(max)"
        }
        if !tasksPerProcess.isEmpty {
            line += "\n    per process: " + tasksPerProcess.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line += "  (threads used: \(threadsUsed))"
        }
        if !peakRSSBytes.isEmpty {
            line += "\n    peak RSS MB: " + peakRSSBytes.sorted { $0.key < $1.key }
                .map { String(format: "%@=%.1f", $0.key, Double($0.value) / 1_048_576) }.joined(separator: " ")
        }
        if let cpu { line += "\n    " + cpu.summary }
        if let memory {
            line += String(format: "\n    broker: %.0f bytes per queued task beyond the payload; idle consumer RSS %.1f MB",
                           memory.brokerBytesPerQueuedTask, Double(memory.consumerIdleBytes) / 1_048_576)
        }
        if let firstError { line += "\n    first problem: \(firstError)" }
        return line
    }
}

/// Reads a process's memory from /proc.
enum ProcessMemory {
    static func residentBytes(pid: Int32) -> UInt64? { field("VmRSS", pid: pid) }
    static func peakResidentBytes(pid: Int32) -> UInt64? { field("VmHWM", pid: pid) }

    private static func field(_ name: String, pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let kilobytes = line.split(separator: " ").compactMap { UInt64($0) }.first
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }

    /// `pids` and all their children (a supervising consumer's child processes).
    static func descendants(of pids: [Int32]) -> [Int32] { ProcessTree.descendants(of: pids) }
}
