import ArgumentParser
import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import ConveyorProducer
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a local broker and consumers, run a mixed workload through them, and print a summary.",
        discussion: "Everything runs on free local ports and is stopped at the end, or on Ctrl-C.")

    @Option(help: "Consumer processes.") var processes = 2
    @Option(help: "Worker threads per consumer process.") var threads = 4
    @Option(help: "echo tasks.") var echo = 20_000
    @Option(help: "sleep tasks (each --sleep-ms).") var sleep = 200
    @Option(name: .customLong("sleep-ms"), help: "Milliseconds each sleep task sleeps.") var sleepMilliseconds = 20
    @Option(help: "sha256 tasks.") var sha256 = 200
    @Option(help: "Iterations of each sha256 task.") var iterations = 5_000
    @Option(help: "Tasks in flight at most.") var window = 1_000

    func validate() throws {
        guard processes >= 1, threads >= 1 else { throw ValidationError("--processes and --threads must be at least 1") }
        guard echo >= 0, sleep >= 0, sha256 >= 0, echo + sleep + sha256 > 0 else {
            throw ValidationError("give at least one task (--echo, --sleep, --sha256)")
        }
    }

    func run() async throws {
        printLine("Starting a broker and \(processes) consumer process\(processes == 1 ? "" : "es") × \(threads) threads…")
        let cluster = try await Cluster(.init(consumers: 0, threads: threads))
        TerminationSignals.install { _ in
            cluster.tearDown()
            #if canImport(Glibc)
            Glibc.exit(130)
            #elseif canImport(Darwin)
            Darwin.exit(130)
            #endif
        }
        defer { cluster.tearDown() }
        try cluster.startConsumer(threads: threads, processes: processes)
        try await cluster.waitForConsumers(processes)
        printLine("broker frontend \(cluster.frontend), backend \(cluster.backend)")
        if let directory = cluster.dataDirectory {
            printLine("durable journal in \(directory) (fsync always: a temporary folder, removed at the end)")
        }

        var tasks: [LoadTask] = []
        for i in 0..<echo { tasks.append(Workloads.echo(i)) }
        for _ in 0..<sleep { tasks.append(Workloads.sleep(ms: sleepMilliseconds)) }
        for i in 0..<sha256 {
            tasks.append(Workloads.sha256(seed: i, iterations: iterations,
                                          expected: BuiltinTasks.iteratedSHA256(seed: "\(i)", iterations: iterations)))
        }
        tasks.shuffle()
        printLine("Submitting \(tasks.count) tasks: \(echo) echo, \(sleep) sleep (\(sleepMilliseconds) ms), \(sha256) sha256 (\(iterations) iterations)…")
        let producer = try cluster.makeProducer { $0.window = window }
        let total = tasks.count
        let report = await LoadRunner.run(producer: producer, tasks: tasks, window: window, cpu: CPUProbe(cluster: cluster)) { done in
            if done % max(1, total / 20) == 0 || done == total {
                FileHandle.standardError.write(Data(String(format: "\r  %3d%%  %d/%d", done * 100 / total, done, total).utf8))
            }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        printLine(DemoSummary.render(report))
        if let journal = try? await cluster.stats().journal { printLine("\n" + StatsFormatter.journal(journal)) }
        if !report.allVerified { throw ExitCode.failure }
    }
}

enum DemoSummary {
    static func render(_ report: LoadReport) -> String {
        var lines: [String] = []
        lines.append("")
        lines.append("Tasks: \(report.total), ok and verified: \(report.succeeded)" +
                     (report.wrong > 0 ? ", WRONG: \(report.wrong)" : "") +
                     (report.failed.isEmpty ? "" : ", failed: " + report.failed.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        if let error = report.firstError { lines.append("First problem: \(error)") }
        lines.append(String(format: "Wall time: %.2f s   Throughput: %.0f tasks/s", report.wallSeconds, report.throughput))
        let h = report.latency
        lines.append("Latency (submit to result, µs): p50 \(h.valueAtPercentile(50))  p90 \(h.valueAtPercentile(90))  p99 \(h.valueAtPercentile(99))  max \(h.max)")
        if let cpu = report.cpu { lines.append(cpu.summary + " (user + system of every process, from first submit to last result)") }
        lines.append("")
        lines.append("Tasks run per process and thread:")
        let processes = report.perProcess.keys.sorted()
        for process in processes {
            lines.append("  \(process): \(report.perProcess[process]!) tasks")
            let threads = report.perThread.filter { $0.key.hasPrefix(process + " thread ") }
                .sorted { threadIndex($0.key) < threadIndex($1.key) }
            let row = threads.map { "t\(threadIndex($0.key))=\($0.value)" }.joined(separator: "  ")
            lines.append("    \(row)")
        }
        return lines.joined(separator: "\n")
    }

    private static func threadIndex(_ key: String) -> Int {
        Int(key.split(separator: " ").last ?? "") ?? -1
    }
}
