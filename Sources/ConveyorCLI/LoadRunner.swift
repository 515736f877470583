import ConveyorProtocol
import Foundation
import Histogram
import Producer
import Synchronization

/// One task of a workload, with the check its result must pass.
struct LoadTask: Sendable {
    let name: String
    let args: RawJSON
    let verify: @Sendable (RawJSON) -> Bool
}

/// What a workload run measured.
struct LoadReport: Sendable {
    var total = 0
    var succeeded = 0
    var wrong = 0
    var failed: [String: Int] = [:]
    var wallSeconds = 0.0
    /// Submit-to-result latency, in microseconds.
    var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    /// Tasks run per "host pid" and per "host pid thread".
    var perProcess: [String: Int] = [:]
    var perThread: [String: Int] = [:]
    var firstError: String?

    var throughput: Double { wallSeconds > 0 ? Double(total) / wallSeconds : 0 }
    var allVerified: Bool { succeeded == total && wrong == 0 }

    mutating func merge(_ other: LoadReport) {
        total += other.total
        succeeded += other.succeeded
        wrong += other.wrong
        other.failed.forEach { failed[$0.key, default: 0] += $0.value }
        latency.add(other.latency)
        other.perProcess.forEach { perProcess[$0.key, default: 0] += $0.value }
        other.perThread.forEach { perThread[$0.key, default: 0] += $0.value }
        firstError = firstError ?? other.firstError
    }
}

/// Submits tasks through a producer with at most `window` in flight, checks every result, and
/// measures latency and where tasks ran. `inFlight: 1` gives sequential round trips.
enum LoadRunner {
    static func run(producer: Producer, tasks: [LoadTask], window: Int,
                    progress: (@Sendable (Int) -> Void)? = nil) async -> LoadReport {
        let collector = Collector()
        let started = ContinuousClock.now
        // `window` workers, each taking the next task until none is left: as many tasks in flight
        // as the window allows, without a child task (and its memory) per submitted task.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(window, tasks.count) {
                group.addTask {
                    while true {
                        let index = collector.next.add(1, ordering: .relaxed).oldValue
                        guard index < tasks.count else { return }
                        let outcome = await runOne(producer: producer, task: tasks[index])
                        collector.report.withLock { $0.record(outcome) }
                        let count = collector.done.add(1, ordering: .relaxed).newValue
                        progress?(count)
                    }
                }
            }
        }
        var final = collector.report.withLock { $0 }
        final.wallSeconds = started.duration(to: .now).seconds
        return final
    }

    private final class Collector: Sendable {
        let report = Mutex(LoadReport())
        let done = Atomic<Int>(0)
        let next = Atomic<Int>(0)
    }

    /// Round trips one at a time, recording each latency.
    static func sequential(producer: Producer, tasks: [LoadTask]) async -> LoadReport {
        var report = LoadReport()
        let started = ContinuousClock.now
        for task in tasks { report.record(await runOne(producer: producer, task: task)) }
        report.wallSeconds = started.duration(to: .now).seconds
        return report
    }

    struct Outcome: Sendable {
        let result: TaskResult?
        let error: String?
        let correct: Bool
        let microseconds: UInt64
    }

    static func runOne(producer: Producer, task: LoadTask) async -> Outcome {
        let start = ContinuousClock.now
        do {
            let handle = try await producer.submit(task.name, json: task.args)
            let result = await handle.result()
            let elapsed = start.duration(to: .now).nanoseconds / 1000
            return Outcome(result: result, error: nil, correct: result.status == .ok && task.verify(result.body),
                           microseconds: elapsed)
        } catch {
            return Outcome(result: nil, error: "\(error)", correct: false, microseconds: 0)
        }
    }
}

extension LoadReport {
    mutating func record(_ outcome: LoadRunner.Outcome) {
        total += 1
        guard let result = outcome.result else {
            failed["submit", default: 0] += 1
            firstError = firstError ?? outcome.error
            return
        }
        if result.status == .ok {
            if outcome.correct { succeeded += 1 } else { wrong += 1; firstError = firstError ?? "wrong result: \(result.body.text.prefix(200))" }
        } else {
            failed[result.status.rawValue, default: 0] += 1
            firstError = firstError ?? "\(result.status.rawValue): \(result.errorMessage ?? result.body.text)"
        }
        _ = latency.record(max(1, outcome.microseconds))
        if let info = result.info, let pid = info.pid {
            let process = "\(info.host ?? "?") pid \(pid)"
            perProcess[process, default: 0] += 1
            perThread["\(process) thread \(info.thread ?? -1)", default: 0] += 1
        }
    }
}

/// Task lists for the workloads of WORKLOADS.md and the demo.
enum Workloads {
    static let payload = String(repeating: "abcdefgh", count: 8)

    static func echo(_ index: Int) -> LoadTask {
        let args = RawJSON(#"{"id":\#(index),"data":"\#(payload)"}"#)
        return LoadTask(name: "echo", args: args) { $0 == args }
    }

    static func sleep(ms: Int) -> LoadTask {
        LoadTask(name: "sleep", args: RawJSON(#"{"ms":\#(ms)}"#)) { $0.text.contains(#""slept_ms":\#(ms)"#) }
    }

    static func sha256(seed: Int, iterations: Int, expected: String) -> LoadTask {
        LoadTask(name: "sha256", args: RawJSON(#"{"seed":"\#(seed)","iterations":\#(iterations)}"#)) {
            $0.text.contains(expected)
        }
    }
}
