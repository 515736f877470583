import ArgumentParser
import ConveyorProtocol
import Foundation
import ConveyorProducer

/// `conveyor submit NAME --input FILE --no-wait`: every line submitted, one line printed per task
/// once the broker has answered it (accepted or refused), no results waited for.
///
/// Batches of up to 256 lines go to ``Producer/submitDetached(batch:)`` one after another, which
/// frees each task's window slot as the broker accepts it (no consumer needs to run for a batch
/// larger than the window to go through); each batch's lines are printed, in input order, with one
/// write once the broker has answered all of it. Accepted tasks are forgotten by the producer, so
/// its shutdown at the end leaves them queued in the broker.
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

        var failures: Int { invalid + refused.values.reduce(0, +) }
    }

    /// Submits one task per line of `tasks`; returns how many were not accepted (refused, or lines
    /// that are not JSON).
    func run(_ tasks: [Substring]) async throws -> Int {
        let started = ContinuousClock.now
        var counts = Counts()
        let batchSize = max(1, min(256, producer.configuration.window))
        var start = 0
        while start < tasks.count {
            let end = min(start + batchSize, tasks.count)
            printLines(try await submit(tasks[start..<end], from: start, counting: &counts))
            start = end
        }
        printSummary(counts, elapsed: started.duration(to: .now).seconds)
        return counts.failures
    }

    /// Submits the valid lines of `batch` (whose first line is number `first`) and returns the
    /// output lines of the whole batch, in input order.
    private func submit(_ batch: ArraySlice<Substring>, from first: Int, counting counts: inout Counts) async throws -> [String] {
        var output = [String?](repeating: nil, count: batch.count)
        var indexes: [Int] = []
        var submissions: [TaskSubmission] = []
        for (offset, line) in batch.enumerated() {
            let text = String(line)
            do {
                try JSONValidator.validate(Array(text.utf8))
            } catch {
                output[offset] = BatchSubmitter.invalidLine(index: first + offset, error: error)
                counts.invalid += 1
                continue
            }
            indexes.append(offset)
            submissions.append(TaskSubmission(name, json: RawJSON(text), options: options))
        }
        guard !submissions.isEmpty else { return output.compactMap { $0 } }
        do {
            let receipts = try await producer.submitDetached(batch: submissions)
            try ExitStatus.exitIfUnreachable(receipts.lazy.compactMap(\.refusal).first?.errorMessage)
            for (offset, receipt) in zip(indexes, receipts) {
                output[offset] = Self.line(index: first + offset, receipt: receipt)
                if let refusal = receipt.refusal {
                    counts.refused[refusal.status.rawValue, default: 0] += 1
                } else {
                    counts.accepted += 1
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // The producer closed under the batch (its loop failed): none of it is known accepted.
            for offset in indexes {
                output[offset] = #"{"index":\#(first + offset),"status":"error","error":\#(JSONText.quoted("\(error)"))}"#
                counts.refused["error", default: 0] += 1
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

    /// "20000 tasks accepted in 1.23 s (16260 tasks/s)", and what was not, on standard error.
    private func printSummary(_ counts: Counts, elapsed: Double) {
        let rate = elapsed > 0 ? Double(counts.accepted) / elapsed : 0
        var text = "\(counts.accepted) tasks accepted in \(String(format: "%.2f", elapsed)) s (\(String(format: "%.0f", rate)) tasks/s)"
        let refused = counts.refused.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        let others = refused + (counts.invalid > 0 ? ["\(counts.invalid) invalid"] : [])
        if !others.isEmpty { text += "; " + others.joined(separator: ", ") }
        printError(text)
    }
}
