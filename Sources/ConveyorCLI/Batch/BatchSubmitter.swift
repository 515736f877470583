import ArgumentParser
import ConveyorProducer
import ConveyorProtocol
import ConveyorSystem
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `conveyor submit NAME --input FILE`: pipelined tasks, one result line each as it arrives.
///
/// Lines are read as they are needed (``BatchInput``: a pipe is streamed) and submitted in
/// batches of up to 256, each one lock, one wake-up and one wait for acceptance in the producer,
/// which keeps at most its window in flight; each result is printed from a `whenDone` callback as
/// it arrives.
///
/// The first Ctrl-C (SIGINT or SIGTERM) stops reading, cancels the tasks still waiting at the
/// broker (not with `--keep-on-interrupt`), waits up to 3 s for the broker's answers, prints a
/// summary (done, cancelled, still running there, not submitted: from which line to resume) and
/// exits with status 130. A second one exits at once.
struct BatchSubmitter: Sendable {
    let producer: Producer
    let name: String
    let options: TaskOptions
    let keepOnInterrupt: Bool

    /// Runs the batch; returns how many tasks did not succeed.
    func run(_ input: sending BatchInput) async throws -> Int {
        let started = ContinuousClock.now
        let state = BatchState(total: input.total)
        let progress = isatty(2) != 0 ? BatchProgress(state: state, started: started) : nil
        let interruption = Interruption { [state] in
            "interrupted again: exiting now; \(state.inFlight.notDone().count) tasks are left at the broker as they are"
        }
        defer { interruption.end() }
        progress?.start()
        // Whichever comes first: the end of the input and every answer, or an interrupt.
        let over = OneShot<Bool>()
        interruption.first.whenSet { _ in over.set(false) }
        state.answers.whenSet { _ in over.set(true) }
        let loopEnded = OneShot<Void>()
        Task { [self, input] in
            await submitAll(input, state: state, interruption: interruption)
            loopEnded.set(())
        }
        let completed = await over.wait()
        progress?.stop()
        guard completed else {
            await windDown(state: state, loopEnded: loopEnded, started: started)
        }
        LineWriter.standardOutput.flush()
        try ExitStatus.exitIfUnreachable(state.unreachable.reason)
        let elapsed = started.duration(to: .now).seconds
        let tasks = state.position.withLock { $0.tasks }
        let rate = elapsed > 0 ? Double(tasks) / elapsed : 0
        printError("\(Plural.tasks(tasks)): \(state.tally.summary) in \(String(format: "%.2f", elapsed)) s (\(String(format: "%.0f", rate)) tasks/s)")
        return tasks - state.tally.count(.ok)
    }

    /// Reads and submits until the input ends or an interrupt; then lets ``BatchState/answers``
    /// fire once every submitted task is answered.
    private func submitAll(_ input: BatchInput, state: BatchState, interruption: Interruption) async {
        let batchSize = max(1, min(256, producer.configuration.window))
        while !interruption.isInterrupted, state.unreachable.reason == nil {
            let lines = await input.next(atMost: batchSize)
            if lines.isEmpty { break }
            if interruption.isInterrupted { break }
            var indexes: [Int] = []
            var submissions: [TaskSubmission] = []
            for line in lines {
                let bytes = Array(line.text.utf8)
                do {
                    try JSONValidator.validate(bytes)
                } catch {
                    LineWriter.standardOutput.write(Self.invalidLine(index: line.index, error: error))
                    state.tally.add(.error)
                    continue
                }
                indexes.append(line.index)
                submissions.append(TaskSubmission(name, json: RawJSON(bytes: bytes), options: options))
            }
            let through = lines[lines.count - 1].index + 1
            guard !submissions.isEmpty else {
                state.submitted(through: through, tasks: lines.count)
                continue
            }
            state.expect(submissions.count)
            do {
                let handles = try await producer.submit(batch: submissions)
                state.inFlight.add(handles)
                state.submitted(through: through, tasks: lines.count)
                for (index, handle) in zip(indexes, handles) {
                    handle.whenDone { result in state.answered(index: index, result: result) }
                }
                if interruption.isInterrupted && !keepOnInterrupt {
                    // Submitted while the interrupt was being handled: take them back too.
                    await state.cancel(handles)
                }
            } catch {
                state.submitted(through: through, tasks: lines.count)
                for index in indexes {
                    LineWriter.standardOutput.write(#"{"index":\#(index),"status":"error","error":\#(JSONText.quoted("\(error)"))}"#)
                    state.tally.add(.error)
                    state.answeredOne()
                }
            }
        }
        state.inputEnded(finished: input.finished)
    }

    /// The first interrupt: cancels what is still at the broker (unless `--keep-on-interrupt`),
    /// waits for the answers (3 s at most), prints the summary and exits 130.
    private func windDown(state: BatchState, loopEnded: OneShot<Void>, started: ContinuousClock.Instant) async -> Never {
        let waiting = state.inFlight.notDone()
        printError(keepOnInterrupt
            ? "interrupted: submitting no more; \(Plural.tasks(waiting.count)) stay at the broker (--keep-on-interrupt); Ctrl-C again to exit at once"
            : "interrupted: submitting no more; cancelling \(Plural.tasks(waiting.count)) still at the broker (running ones finish there); Ctrl-C again to exit at once")
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        if !keepOnInterrupt {
            let cancelled = OneShot<Void>()
            Task {
                await state.cancel(waiting)
                cancelled.set(())
            }
            await Self.wait(for: cancelled, until: deadline)
            // A result can wake its waiter here before its callback has printed its line.
            while ContinuousClock.now < deadline, state.unprinted > 0 {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        // A submit in progress when the signal came: let it return, so its tasks are counted.
        if state.position.withLock({ $0.inSubmit }) > 0 { await Self.wait(for: loopEnded, until: deadline) }
        LineWriter.standardOutput.flush()
        printError(state.interruptSummary(keeping: keepOnInterrupt, elapsed: started.duration(to: .now).seconds))
        exit(ExitStatus.interrupted)
    }

    /// Waits for `latch` until `deadline` at most.
    private static func wait(for latch: OneShot<Void>, until deadline: ContinuousClock.Instant) async {
        let either = OneShot<Void>()
        latch.whenSet { _ in either.set(()) }
        let timer = Task {
            try? await Task.sleep(until: deadline)
            either.set(())
        }
        await either.wait()
        timer.cancel()
    }

    /// The output line of a line (0-based `index`) that is not valid JSON.
    static func invalidLine(index: Int, error: any Error) -> String {
        #"{"index":\#(index),"status":"error","error":\#(JSONText.quoted("line \(index + 1): not valid JSON: \(error)"))}"#
    }

    /// The output line of a result, appended to `out` with its newline. Written as bytes, by
    /// hand rather than encoded: the result is the task's own JSON, copied in untouched, and this
    /// runs once per task (a `String` built piece by piece cost a quarter of the CLI's time).
    /// `kind` (the error kind) for a task that did not succeed; `worker`, `attempts` and
    /// `elapsed_ms` (its handler's time) when a consumer ran it.
    static func appendLine(index: Int, result: TaskResult, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"index":"#.utf8)
        out.append(contentsOf: String(index).utf8)
        out.append(contentsOf: #","id":"#.utf8)
        appendQuoted(result.id, to: &out)
        out.append(contentsOf: #","status":""#.utf8)
        out.append(contentsOf: result.status.rawValue.utf8)
        out.append(UInt8(ascii: "\""))
        if result.status == .ok {
            out.append(contentsOf: #","result":"#.utf8)
            out.append(contentsOf: result.body.bytes)
        } else {
            out.append(contentsOf: #","error":"#.utf8)
            out.append(contentsOf: JSONText.quoted(result.errorMessage ?? result.body.text).utf8)
            if let kind = result.errorKind {
                out.append(contentsOf: #","kind":""#.utf8)
                out.append(contentsOf: kind.rawValue.utf8)
                out.append(UInt8(ascii: "\""))
            }
        }
        if let info = result.info, info.pid != nil {
            out.append(contentsOf: #","worker":"#.utf8)
            ResultInfo(host: info.host, pid: info.pid, thread: info.thread, process: info.process).appendJSON(to: &out)
        }
        if let attempts = result.info?.attempts {
            out.append(contentsOf: #","attempts":"#.utf8)
            out.append(contentsOf: String(attempts).utf8)
        }
        if let elapsed = result.info?.elapsedMilliseconds {
            out.append(contentsOf: #","elapsed_ms":"#.utf8)
            out.append(contentsOf: elapsed.description.utf8)
        }
        out.append(contentsOf: "}\n".utf8)
    }

    /// A task id as a JSON string: ids are visible ASCII, so only `"` and `\` need escaping.
    private static func appendQuoted(_ id: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in id.utf8 {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The output line of a result, as text (without its newline).
    static func line(index: Int, result: TaskResult) -> String {
        var bytes: [UInt8] = []
        appendLine(index: index, result: result, to: &bytes)
        return String(decoding: bytes.dropLast(), as: UTF8.self)
    }
}

/// "1 task", "2 tasks".
enum Plural {
    static func tasks(_ count: Int) -> String { count == 1 ? "1 task" : "\(count) tasks" }
}
