import ConveyorProtocol
import ConveyorSystem
import Foundation
import Histogram
import ConveyorProducer
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
    /// Tasks run per worker thread (counted by integers on the hot path; named below).
    var perWorker: [Worker: Int] = [:]

    struct Worker: Hashable, Sendable {
        let host: String
        let pid: Int
        let thread: Int
    }

    /// Tasks run per "host pid N".
    var perProcess: [String: Int] {
        perWorker.reduce(into: [:]) { $0["\($1.key.host) pid \($1.key.pid)", default: 0] += $1.value }
    }

    /// Tasks run per "host pid N thread T".
    var perThread: [String: Int] {
        perWorker.reduce(into: [:]) { $0["\($1.key.host) pid \($1.key.pid) thread \($1.key.thread)", default: 0] += $1.value }
    }
    var firstError: String?
    /// CPU time of the run's processes over the timed window (when a `CPUProbe` was given).
    var cpu: CPUReport?

    /// Tasks that got a result (whatever its status).
    var completed: Int { total - failed["submit", default: 0] }

    var throughput: Double { wallSeconds > 0 ? Double(total) / wallSeconds : 0 }
    var allVerified: Bool { succeeded == total && wrong == 0 }

    mutating func merge(_ other: LoadReport) {
        total += other.total
        succeeded += other.succeeded
        wrong += other.wrong
        other.failed.forEach { failed[$0.key, default: 0] += $0.value }
        latency.add(other.latency)
        other.perWorker.forEach { perWorker[$0.key, default: 0] += $0.value }
        firstError = firstError ?? other.firstError
    }
}

/// Submits tasks through a producer with at most `window` in flight, checks every result, and
/// measures latency and where tasks ran. `inFlight: 1` gives sequential round trips.
enum LoadRunner {
    static func run(producer: Producer, tasks: [LoadTask], window: Int, cpu: CPUProbe? = nil,
                    progress: (@Sendable (Int) -> Void)? = nil) async -> LoadReport {
        let collector = Collector(total: tasks.count)
        let cpuBefore = cpu?.sample()
        let started = ContinuousClock.now
        // Batches of up to a sixteenth of the window: the window stays mostly full, and each batch
        // costs one lock, one wake-up and one wait for acceptance instead of one per task.
        // Results are taken by `whenDone` callbacks on the producer's I/O thread: no Swift task
        // waits per task.
        // Four submitters, so that one batch waiting for the broker's acceptance does not hold
        // back the next one.
        let batchSize = max(1, min(256, window / 16))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while true {
                        let start = collector.next.add(batchSize, ordering: .relaxed).oldValue
                        guard start < tasks.count else { return }
                        let batch = tasks[start..<min(start + batchSize, tasks.count)]
                        let submitted = ContinuousClock.now
                        do {
                            let handles = try await producer.submit(batch: batch.map { TaskSubmission($0.name, json: $0.args) })
                            for (task, handle) in zip(batch, handles) {
                                handle.whenDone { result in
                                    let elapsed = submitted.duration(to: .now).nanoseconds / 1000
                                    collector.finish(Outcome(result: result, error: nil,
                                                             correct: result.status == .ok && task.verify(result.body),
                                                             microseconds: elapsed), progress: progress)
                                }
                            }
                        } catch {
                            for _ in batch {
                                collector.finish(Outcome(result: nil, error: "\(error)", correct: false, microseconds: 0),
                                                 progress: progress)
                            }
                        }
                    }
                }
            }
        }
        await collector.allDone()
        var final = collector.report.withLock { $0 }
        final.wallSeconds = started.duration(to: .now).seconds
        if let cpu, let cpuBefore {
            final.cpu = cpu.report(since: cpuBefore, tasks: final.completed, wallSeconds: final.wallSeconds)
        }
        return final
    }

    private final class Collector: Sendable {
        let report = Mutex(LoadReport())
        /// The index of the next task to submit.
        let next = Atomic<Int>(0)
        let total: Int
        private let done = Mutex<(count: Int, waiter: CheckedContinuation<Void, Never>?)>((0, nil))

        init(total: Int) { self.total = total }

        func finish(_ outcome: Outcome, progress: (@Sendable (Int) -> Void)?) {
            report.withLock { $0.record(outcome) }
            let (count, waiter) = done.withLock { done -> (Int, CheckedContinuation<Void, Never>?) in
                done.count += 1
                guard done.count == total else { return (done.count, nil) }
                defer { done.waiter = nil }
                return (done.count, done.waiter)
            }
            progress?(count)
            waiter?.resume()
        }

        func allDone() async {
            await withCheckedContinuation { continuation in
                let finished = done.withLock { done -> Bool in
                    guard done.count < total else { return true }
                    done.waiter = continuation
                    return false
                }
                if finished { continuation.resume() }
            }
        }
    }

    /// Round trips one at a time, recording each latency.
    static func sequential(producer: Producer, tasks: [LoadTask], cpu: CPUProbe? = nil) async -> LoadReport {
        var report = LoadReport()
        let cpuBefore = cpu?.sample()
        let started = ContinuousClock.now
        for task in tasks { report.record(await runOne(producer: producer, task: task)) }
        report.wallSeconds = started.duration(to: .now).seconds
        if let cpu, let cpuBefore {
            report.cpu = cpu.report(since: cpuBefore, tasks: report.completed, wallSeconds: report.wallSeconds)
        }
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
            let result = try await producer.run(task.name, json: task.args)
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
            perWorker[Worker(host: info.host ?? "?", pid: pid, thread: info.thread ?? -1), default: 0] += 1
        }
    }
}

/// Task lists for the workloads (docs/BENCHMARKS.md, "The workloads") and the demo.
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
