import ArgumentParser
import ConveyorProtocol
import Foundation
import ConveyorProducer
import ConveyorSystem
import Synchronization

/// `conveyor submit NAME --input FILE --no-wait`: every line submitted, one line printed per task
/// once the broker has answered it (accepted or refused), no results waited for.
///
/// Batches of up to 256 lines go to ``Producer/submitDetached(batch:)`` one after another, which
/// frees each task's window slot as the broker accepts it (no consumer needs to run for a batch
/// larger than the window to go through); each batch's lines are printed, in input order, with one
/// write once the broker has answered all of it. Accepted tasks are forgotten by the producer, so
/// its shutdown at the end leaves them queued in the broker.
///
/// The first Ctrl-C stops reading: the batch being submitted is waited for (3 s at most), the
/// accepted tasks stay queued (that is what `--no-wait` asks for), and a summary says from which
/// line to resume; exit status 130. A second Ctrl-C exits at once.
struct DetachedBatchSubmitter: Sendable {
    let producer: Producer
    let name: String
    let options: TaskOptions

    /// What happened to the tasks so far.
    private struct Counts {
        var accepted = 0
        /// Refused tasks by status (`rejected`, `timeout`, `error`), and lines that are not JSON.
        var refused: [String: Int] = [:]
        var invalid = 0
        /// The line number after the last line answered: every line before it was.
        var answeredThrough = 0
        /// The line number after the last line handed to a submit.
        var handedThrough = 0

        var failures: Int { invalid + refused.values.reduce(0, +) }
    }

    /// The counts, shared by the submitting task and the interrupt.
    private final class SharedCounts: Sendable {
        let value = Mutex(Counts())
    }

    /// Submits one task per line of `input`; returns how many were not accepted (refused, or lines
    /// that are not JSON).
    func run(_ input: sending BatchInput) async throws -> Int {
        let started = ContinuousClock.now
        let counts = SharedCounts()
        let interruption = Interruption {
            "interrupted again: exiting now; the tasks accepted so far stay queued at the broker"
        }
        defer { interruption.end() }
        let over = OneShot<Result<Bool, any Error>>()
        interruption.first.whenSet { _ in over.set(.success(false)) }
        Task { [self, input] in
            let batchSize = max(1, min(256, producer.configuration.window))
            do {
                while !interruption.isInterrupted {
                    let lines = await input.next(atMost: batchSize)
                    if lines.isEmpty || interruption.isInterrupted { break }
                    printLines(try await submit(lines, counting: counts))
                }
                over.set(.success(!interruption.isInterrupted))
            } catch {
                over.set(.failure(error))
            }
        }
        guard try await over.wait().get() else {
            // Let the batch in flight be answered, so that its lines are printed and counted.
            let deadline = ContinuousClock.now.advanced(by: .seconds(3))
            while ContinuousClock.now < deadline, counts.value.withLock({ $0.answeredThrough < $0.handedThrough }) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            let counts = counts.value.withLock { $0 }
            printError("interrupted: \(summary(counts, elapsed: started.duration(to: .now).seconds)); the accepted tasks stay queued at the broker; resume from line \(counts.answeredThrough + 1)")
            exit(ExitStatus.interrupted)
        }
        let final = counts.value.withLock { $0 }
        printError(summary(final, elapsed: started.duration(to: .now).seconds))
        return final.failures
    }

    /// Submits the valid `lines` and returns the output lines of all of them, in input order.
    private func submit(_ lines: [BatchInput.Line], counting counts: SharedCounts) async throws -> [String] {
        counts.value.withLock { $0.handedThrough = lines[lines.count - 1].index + 1 }
        var output = [String?](repeating: nil, count: lines.count)
        var indexes: [Int] = []
        var submissions: [TaskSubmission] = []
        var invalid = 0
        for (offset, line) in lines.enumerated() {
            let text = String(line.text)
            do {
                try JSONValidator.validate(Array(text.utf8))
            } catch {
                output[offset] = BatchSubmitter.invalidLine(index: line.index, error: error)
                invalid += 1
                continue
            }
            indexes.append(offset)
            submissions.append(TaskSubmission(name, json: RawJSON(text), options: options))
        }
        var accepted = 0
        var refused: [String: Int] = [:]
        defer {
            counts.value.withLock {
                $0.invalid += invalid
                $0.accepted += accepted
                $0.refused.merge(refused, uniquingKeysWith: +)
                $0.answeredThrough = lines[lines.count - 1].index + 1
            }
        }
        guard !submissions.isEmpty else { return output.compactMap { $0 } }
        do {
            let receipts = try await producer.submitDetached(batch: submissions)
            try ExitStatus.exitIfUnreachable(receipts.lazy.compactMap(\.refusal).first?.errorMessage)
            for (offset, receipt) in zip(indexes, receipts) {
                output[offset] = Self.line(index: lines[offset].index, receipt: receipt)
                if let refusal = receipt.refusal {
                    refused[refusal.status.rawValue, default: 0] += 1
                } else {
                    accepted += 1
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // The producer closed under the batch (its loop failed): none of it is known accepted.
            for offset in indexes {
                output[offset] = #"{"index":\#(lines[offset].index),"status":"error","error":\#(JSONText.quoted("\(error)"))}"#
                refused["error", default: 0] += 1
            }
        }
        return output.compactMap { $0 }
    }

    /// `{"index", "id"}` for an accepted task; `{"index", "status", "error"}` for a refused one.
    static func line(index: Int, receipt: TaskReceipt) -> String {
        guard let refusal = receipt.refusal else {
            return #"{"index":\#(index),"id":\#(JSONText.quoted(receipt.id))}"#
        }
        let reason = refusal.errorMessage ?? refusal.body.text
        return #"{"index":\#(index),"status":"\#(refusal.status.rawValue)","error":\#(JSONText.quoted(reason))}"#
    }

    /// Writes `lines` to standard output at once.
    private func printLines(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// "20000 tasks accepted in 1.23 s (16260 tasks/s)", and what was not.
    private func summary(_ counts: Counts, elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(counts.accepted) / elapsed : 0
        var text = "\(Plural.tasks(counts.accepted)) accepted in \(String(format: "%.2f", elapsed)) s (\(String(format: "%.0f", rate)) tasks/s)"
        let refused = counts.refused.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        let others = refused + (counts.invalid > 0 ? ["\(counts.invalid) invalid"] : [])
        if !others.isEmpty { text += "; " + others.joined(separator: ", ") }
        return text
    }
}
