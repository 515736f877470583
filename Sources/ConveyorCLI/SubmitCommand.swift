import ArgumentParser
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ConveyorProducer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct TaskOptionFlags: ParsableArguments {
    @Option(help: "Seconds the task may take from submission to result, queueing included.")
    var timeout: Double = 300

    @Option(help: "Priority: higher runs first.")
    var priority: Int32 = 0

    @Option(help: "Attempts in all (retries after a handler failure, with backoff).")
    var attempts: UInt32 = 1

    @Option(help: "Milliseconds before the first retry; doubles each time.")
    var retryBackoffMs: UInt32 = 1000

    @Flag(help: "Refuse the task at once when no connected consumer serves its name (instead of a warning and a wait for one).")
    var requireConsumer = false

    @Flag(help: "Cancel the task while it waits if this producer goes away (exits, is killed, loses its connection for 4 s). Not with --no-wait, which goes away at once.")
    var cancelOnDisconnect = false

    func validate() throws {
        guard timeout > 0, timeout <= 4_000_000 else { throw ValidationError("--timeout must be between 0 and 4000000 seconds") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
    }

    var options: TaskOptions {
        TaskOptions(timeoutMilliseconds: UInt32(timeout * 1000), priority: priority, maxAttempts: attempts,
                    retryBackoffMilliseconds: retryBackoffMs, cancelOnDisconnect: cancelOnDisconnect,
                    requireConsumer: requireConsumer)
    }
}

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a task (or one task per input line) and print the result.",
        discussion: """
            One task: prints the result JSON on stdout; exits non-zero with the error on stderr when the \
            task did not succeed. With --input FILE (- for stdin), each line is one task's args (NDJSON); \
            stdout gets one JSON line per task as its result arrives: {"index", "id", "status", "result" or \
            "error", "worker"}.

            --no-wait does not wait for results. One task: prints its id once the broker accepted it. \
            With --input: submits every line, prints one line per task in input order, {"index", "id"} for \
            each task the broker accepted ({"index", "status": "rejected" or "timeout", "error"} for one it \
            refused or did not answer, {"index", "status": "error", "error"} for a line that is not JSON), \
            and exits once the broker has answered every task: 0 when it accepted them all, 1 otherwise \
            (a summary goes to stderr). The tasks stay queued in the broker; `conveyor status ID` follows one.

            Exit status: 0 done (every task ok); 1 a task or request failed; 64 bad usage (an option, an             endpoint that is not tcp://HOST:PORT, args that are not JSON); 69 the broker cannot be reached:             nothing listens at --broker, the handshake failed (CURVE keys), or it is the broker's backend.             That is said within about a second, once; a broker that is reached but slow is waited for.
            """)

    @Argument(help: "The task name.")
    var name: String

    @Argument(help: "The task's args as JSON.")
    var args: String?

    @Option(help: "Read one task's args per line from FILE (- for stdin).")
    var input: String?

    @Flag(help: "Print the task id (with --input: one line per task) once accepted, instead of waiting for the result.")
    var noWait = false

    @Option(help: "Tasks in flight at most (batch mode; with --no-wait, tasks the broker has yet to accept).")
    var window = 1000

    @Option(help: "Task id (single task). Submitting an id again is safe.")
    var id: String?

    @OptionGroup var task: TaskOptionFlags
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if input != nil && args != nil { throw ValidationError("give args as an argument or --input, not both") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        if noWait && task.cancelOnDisconnect {
            throw ValidationError("--cancel-on-disconnect with --no-wait would cancel the tasks as soon as this command exits: drop one of them")
        }
    }

    func run() async throws {
        let logger = logging.bootstrap(label: "conveyor.submit")
        var configuration = try endpoint.producerConfiguration()
        configuration.window = window
        let json = args ?? "{}"
        if input == nil {
            do {
                try JSONValidator.validate(Array(json.utf8))
            } catch {
                printError("error: ARGS_JSON is not valid JSON: \(error)")
                throw ExitCode.validationFailure
            }
        }
        try await withProducer(configuration, logger: logger) { producer in
            if let input {
                let lines = try BatchSubmitter.lines(of: input)
                let failures = noWait
                    ? try await DetachedBatchSubmitter(producer: producer, name: name, options: task.options).run(lines)
                    : try await BatchSubmitter(producer: producer, name: name, options: task.options).run(lines)
                if failures > 0 { throw ExitCode.failure }
                return
            }
            let handle: TaskHandle
            do {
                handle = try await producer.submit(name, json: json, options: task.options, id: id)
            } catch {
                try ExitStatus.exitIfUnreachable("\(error)")
                printError("error: \(error)")
                throw ExitCode.failure
            }
            if noWait {
                printLine(handle.id)
                return
            }
            let result = await handle.result()
            if result.status == .ok {
                printLine(result.body.text)
            } else {
                try ExitStatus.exitIfUnreachable(result.errorMessage)
                printError("error: task \(result.id) ended \(result.status.rawValue): \(result.errorMessage ?? result.body.text)")
                throw ExitCode.failure
            }
        }
    }
}

/// `conveyor submit NAME --input FILE`: pipelined tasks, one result line each as it arrives.
struct BatchSubmitter: Sendable {
    let producer: Producer
    let name: String
    let options: TaskOptions

    private final class Tally: Sendable {
        let counts = Mutex<[String: Int]>([:])
        let done = Atomic<Int>(0)
        func add(_ status: String) {
            counts.withLock { $0[status, default: 0] += 1 }
            done.add(1, ordering: .relaxed)
        }
    }

    /// The lines of `input` (a file, or - for standard input), one task's args each.
    static func lines(of input: String) throws -> [Substring] {
        let lines: [Substring]
        if input == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        } else {
            guard let data = FileManager.default.contents(atPath: input) else {
                printError("error: cannot read --input file '\(input)'")
                throw ExitCode.failure
            }
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        }
        // A final newline does not make an extra task.
        return lines.last?.isEmpty == true ? Array(lines.dropLast()) : lines
    }

    /// The output line of a line (0-based `index`) that is not valid JSON.
    static func invalidLine(index: Int, error: any Error) -> String {
        #"{"index":\#(index),"status":"error","error":\#(JSONText.quoted("line \(index + 1): not valid JSON: \(error)"))}"#
    }

    /// Runs the batch, one task per line of `tasks`; returns how many tasks did not succeed.
    func run(_ tasks: [Substring]) async throws -> Int {
        let tally = Tally()
        let started = ContinuousClock.now
        let progress = isatty(2) != 0 ? Progress(total: tasks.count, tally: tally, started: started) : nil
        progress?.start()
        // Batches of up to 256 lines: each is one lock, one wake-up and one wait for acceptance in
        // the producer, which keeps at most its window in flight; each result is printed from a
        // `whenDone` callback as it arrives.
        let finished = Finished(expected: tasks.count)
        let batchSize = max(1, min(256, producer.configuration.window))
        var start = 0
        let unreachable = UnreachableNote()
        while start < tasks.count {
            // A broker that cannot be reached is said once, at once, not once per line.
            if let reason = unreachable.reason {
                progress?.stop()
                try ExitStatus.exitIfUnreachable(reason)
            }
            let end = min(start + batchSize, tasks.count)
            var indexes: [Int] = []
            var submissions: [TaskSubmission] = []
            for index in start..<end {
                let line = String(tasks[index])
                do {
                    try JSONValidator.validate(Array(line.utf8))
                } catch {
                    printLine(Self.invalidLine(index: index, error: error))
                    tally.add("error")
                    finished.one()
                    continue
                }
                indexes.append(index)
                submissions.append(TaskSubmission(name, json: RawJSON(line), options: options))
            }
            start = end
            guard !submissions.isEmpty else { continue }
            do {
                let handles = try await producer.submit(batch: submissions)
                for (index, handle) in zip(indexes, handles) {
                    handle.whenDone { result in
                        if ExitStatus.isUnreachable(result.errorMessage) {
                            unreachable.note(result.errorMessage)
                            tally.add("error")
                            finished.one()
                            return
                        }
                        printLine(Self.line(index: index, result: result))
                        tally.add(result.status.rawValue)
                        finished.one()
                    }
                }
            } catch {
                for index in indexes {
                    printLine(#"{"index":\#(index),"status":"error","error":\#(JSONText.quoted("\(error)"))}"#)
                    tally.add("error")
                    finished.one()
                }
            }
        }
        await finished.wait()
        progress?.stop()
        try ExitStatus.exitIfUnreachable(unreachable.reason)
        let elapsed = started.duration(to: .now).seconds
        let counts = tally.counts.withLock { $0 }
        let summary = TaskStatus.allCases.compactMap { status in counts[status.rawValue].map { "\(status.rawValue) \($0)" } }
        let rate = elapsed > 0 ? Double(tasks.count) / elapsed : 0
        printError("\(tasks.count) task\(tasks.count == 1 ? "" : "s"): \(summary.joined(separator: ", ")) in \(String(format: "%.2f", elapsed)) s (\(String(format: "%.0f", rate)) tasks/s)")
        return tasks.count - (counts["ok"] ?? 0)
    }

    /// Counts tasks answered (printed) and wakes the waiter once all are: an atomic count per
    /// task, and a ``OneShot`` set by the last one.
    private final class Finished: Sendable {
        private let count = Atomic<Int>(0)
        private let expected: Int
        private let all = OneShot<Void>()

        init(expected: Int) {
            self.expected = expected
            if expected == 0 { all.set(()) }
        }

        func one() {
            if count.add(1, ordering: .acquiringAndReleasing).newValue == expected { all.set(()) }
        }

        func wait() async { await all.wait() }
    }

    /// Built by hand rather than encoded: the result is the task's own JSON, copied in untouched,
    /// and this runs once per task.
    static func line(index: Int, result: TaskResult) -> String {
        var text = #"{"index":\#(index),"id":\#(JSONText.quoted(result.id)),"status":"\#(result.status.rawValue)""#
        if result.status == .ok {
            text += #","result":\#(result.body.text)"#
        } else {
            text += #","error":\#(JSONText.quoted(result.errorMessage ?? result.body.text))"#
        }
        if let info = result.info, info.pid != nil {
            let worker = ResultInfo(host: info.host, pid: info.pid, thread: info.thread, process: info.process)
            text += #","worker":\#(worker.json)"#
        }
        if let attempts = result.info?.attempts { text += #","attempts":\#(attempts)"# }
        return text + "}"
    }

    /// A progress bar with rate and ETA on standard error.
    private final class Progress: Sendable {
        let total: Int
        let tally: Tally
        let started: ContinuousClock.Instant
        let running = Atomic<Bool>(false)

        init(total: Int, tally: Tally, started: ContinuousClock.Instant) {
            self.total = total
            self.tally = tally
            self.started = started
        }

        func start() {
            running.store(true, ordering: .relaxed)
            Thread.detachNewThread { [self] in
                while running.load(ordering: .relaxed) {
                    draw()
                    Thread.sleep(forTimeInterval: 0.2)
                }
            }
        }

        func stop() {
            running.store(false, ordering: .relaxed)
            draw()
            FileHandle.standardError.write(Data("\n".utf8))
        }

        func draw() {
            let done = tally.done.load(ordering: .relaxed)
            let elapsed = started.duration(to: .now).seconds
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let eta = rate > 0 ? Double(total - done) / rate : 0
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let text = String(format: "\r[%@] %d/%d  %.0f tasks/s  ETA %.1f s ", bar, done, total, rate, eta)
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}
