import ConveyorWorker
import ArgumentParser
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ConveyorProducer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a task (or one task per input line) and print the result.",
        discussion: """
            One task: prints the result JSON on stdout; exits non-zero with the error on stderr when the \
            task did not succeed.

            With --input FILE (- for stdin; a pipe is read as it comes, so `tail -f x.ndjson | conveyor \
            submit NAME --input -` works), each line is one task's args (NDJSON); blank lines are skipped \
            and keep their number. Stdout gets one JSON line per task as its result arrives: {"index" (the \
            line, from 0), "id", "status", then "result" (status ok) or "error" and "kind", then "worker" \
            {"host", "pid", "thread", "process"}, "attempts", "elapsed_ms" (the handler's time) when a \
            consumer ran it}. A summary goes to stderr.

            Status values: ok; error (the handler failed, or a line is not JSON); timeout; cancelled; \
            rejected (the broker refused the task: queue full, no such name with --require-consumer, args \
            over its --max-message-size, an id held by another task). Kinds: handler_error, unknown_task, \
            malformed_json, bad_args, timeout, cancelled, rejected, attempts_exhausted, consumer_lost, \
            unsupported.

            Ctrl-C: the first stops reading, cancels what still waits at the broker (not with \
            --keep-on-interrupt), prints what was done, cancelled, left running and not submitted (the line \
            to resume from), and exits 130; a second one exits at once.

            Delayed tasks: --delay SECONDS or --at TIME (ISO 8601 with its zone: 2026-12-24T18:00:00Z, \
            2026-12-24T19:00:00+01:00; a time without a zone is refused) make the task wait at the broker, \
            scheduled, until then: `conveyor status ID` says `scheduled` and when it is due, `conveyor tasks \
            --state scheduled` lists it, `conveyor cancel ID` takes it back, and it survives a broker restart. \
            A time already past is ready at once; at most a year ahead. --timeout counts from that time. \
            With --input, --delay counts from the command's start for every line.

            Unique tasks: with --unique-key KEY, while a task of the same name with that key is queued, \
            scheduled, running, or finished less than --unique-ttl SECONDS ago (default 0: only while not \
            finished), the submit makes no new task: it is answered with that task's id (printed by \
            --no-wait; a note on stderr says so) and gets that task's result. Keys are per task name.

            --no-wait does not wait for results. One task: prints its id once the broker accepted it. \
            With --input: submits every line, prints one line per task in input order, {"index", "id"} for \
            each task the broker accepted ({"index", "status": "rejected" or "timeout", "error"} for one it \
            refused or did not answer, {"index", "status": "error", "error"} for a line that is not JSON), \
            and exits once the broker has answered every task: 0 when it accepted them all, 1 otherwise. \
            The tasks stay queued in the broker; `conveyor status ID` follows one.

            Exit status: 0 done (every task ok); 1 a task or request failed; 64 bad usage (an option, an \
            endpoint that is not tcp://HOST:PORT, args that are not JSON); 69 the broker cannot be reached \
            (nothing listens at --broker, the handshake failed: CURVE keys, or it is the broker's backend), \
            said within about a second, once (a broker that is reached but slow is waited for); 130 \
            interrupted (Ctrl-C or SIGTERM).
            """)

    @Argument(help: "The task name.")
    var name: String

    @Argument(help: "The task's args as JSON.")
    var args: String?

    @Option(name: [.customShort("i"), .long], help: "Read one task's args per line from FILE (- for stdin, or a pipe: read as lines come).")
    var input: String?

    @Flag(help: "Print the task id (with --input: one line per task) once accepted, instead of waiting for the result.")
    var noWait = false

    @Option(help: "Tasks in flight at most (batch mode; with --no-wait, tasks the broker has yet to accept).")
    var window = 1000

    @Option(help: "Task id (single task). Submitting an id again is safe.")
    var id: String?

    @Flag(help: "At Ctrl-C, leave the tasks at the broker instead of cancelling those still waiting there.")
    var keepOnInterrupt = false

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
                let lines = try BatchInput(path: input)
                let failures = noWait
                    ? try await DetachedBatchSubmitter(producer: producer, name: name, options: task.options).run(lines)
                    : try await BatchSubmitter(producer: producer, name: name, options: task.options,
                                               keepOnInterrupt: keepOnInterrupt).run(lines)
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
            if let existing = handle.existingID {
                printError("unique key '\(task.uniqueKey ?? "")' of '\(name)' is held by task \(existing): no new task was made; \(noWait ? "its id" : "its result") follows")
            }
            if noWait {
                printLine(handle.taskID)
                return
            }
            let result = await resultOrInterrupt(handle)
            if result.status == .ok {
                printLine(result.body.text)
            } else {
                try ExitStatus.exitIfUnreachable(result.errorMessage)
                printError("error: task \(result.id) ended \(result.status.rawValue): \(result.errorMessage ?? result.body.text)")
                throw ExitCode.failure
            }
        }
    }

    /// The task's result; or, at the first Ctrl-C, the task cancelled if it still waits at the
    /// broker (not with --keep-on-interrupt), a line that says what became of it, and exit 130.
    private func resultOrInterrupt(_ handle: TaskHandle) async -> TaskResult {
        let interruption = Interruption { "interrupted again: exiting now; task \(handle.id) is left at the broker as it is" }
        defer { interruption.end() }
        let first = OneShot<TaskResult?>()
        handle.whenDone { first.set($0) }
        interruption.first.whenSet { _ in first.set(nil) }
        if let result = await first.wait() { return result }
        if keepOnInterrupt {
            printError("interrupted: task \(handle.id) stays at the broker (--keep-on-interrupt); `conveyor status \(handle.id)` follows it")
            Glibc.exit(ExitStatus.interrupted)
        }
        let outcome = OneShot<CancelOutcome>()
        Task { outcome.set((try? await handle.cancel()) ?? .unrecognized) }
        Task {
            try? await Task.sleep(for: .seconds(3))
            outcome.set(.unrecognized)
        }
        switch await outcome.wait() {
        case .cancelled: printError("interrupted: task \(handle.id) was cancelled while it waited at the broker")
        case .done: printError("interrupted: task \(handle.id) had just finished; `conveyor status \(handle.id)` has its result")
        case .running: printError("interrupted: task \(handle.id) is running and finishes at the broker; `conveyor status \(handle.id)` will have its result")
        default: printError("interrupted: the broker did not say whether task \(handle.id) was cancelled; `conveyor status \(handle.id)` tells")
        }
        Glibc.exit(ExitStatus.interrupted)
    }
}
