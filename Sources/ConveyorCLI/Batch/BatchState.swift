import ConveyorProducer
import ConveyorProtocol
import ConveyorSystem
import DequeModule
import Foundation
import Synchronization

/// What a batch submit knows while it runs, shared by the submitting loop, the result callbacks
/// (on the producer's I/O thread), the progress bar and the interrupt.
final class BatchState: Sendable {
    /// Where the loop is in the input.
    struct Position {
        /// Lines with a task in them that went through a submit (or were not JSON).
        var tasks = 0
        /// The line number after the last such line: every line before it was submitted.
        var submittedThrough = 0
        /// Tasks in a submit that has not returned yet.
        var inSubmit = 0
        /// Set when the loop stopped: whether the input was read to its end.
        var inputFinished: Bool?
    }

    /// Lines with a task in them, when known up front (a regular file).
    let total: Int?
    let tally = Tally()
    let position = Mutex(Position())
    let inFlight = InFlight()
    let unreachable = UnreachableNote()
    /// Set once the input ended and every submitted task was answered.
    let answers = OneShot<Void>()
    /// Tasks not answered yet, plus one while the loop may submit more.
    private let outstanding = Atomic<Int>(1)
    private let cancelOutcomes = Mutex<[CancelOutcome: Int]>([:])

    init(total: Int?) { self.total = total }

    func expect(_ count: Int) {
        outstanding.add(count, ordering: .relaxed)
        position.withLock { $0.inSubmit = count }
    }

    func submitted(through line: Int, tasks: Int) {
        position.withLock {
            $0.tasks += tasks
            $0.submittedThrough = line
            $0.inSubmit = 0
        }
    }

    func answered(index: Int, result: TaskResult) {
        if ExitStatus.isUnreachable(result.errorMessage) {
            unreachable.note(result.errorMessage)
            tally.add(.error)
        } else {
            LineWriter.standardOutput.write { BatchSubmitter.appendLine(index: index, result: result, to: &$0) }
            tally.add(result.status)
        }
        answeredOne()
    }

    func answeredOne() {
        if outstanding.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { answers.set(()) }
    }

    func inputEnded(finished: Bool) {
        position.withLock { $0.inputFinished = finished }
        answeredOne()
    }

    /// Asks the broker to cancel each of `handles` not done yet, side by side; waits for the
    /// answers, and for the `cancelled` results of those it cancelled.
    func cancel(_ handles: [TaskHandle]) async {
        await withTaskGroup(of: CancelOutcome.self) { group in
            for handle in handles where !handle.isDone {
                group.addTask {
                    let outcome = (try? await handle.cancel()) ?? .unrecognized
                    if outcome == .cancelled { _ = await handle.result() }
                    return outcome
                }
            }
            for await outcome in group {
                cancelOutcomes.withLock { $0[outcome, default: 0] += 1 }
            }
        }
    }

    /// Submitted tasks that are done but whose line is not printed yet.
    var unprinted: Int {
        let submitted = position.withLock { $0.tasks }
        return max(0, submitted - inFlight.notDone().count - tally.answered)
    }

    /// What the first interrupt left, on one line per kind.
    func interruptSummary(keeping: Bool, elapsed: Double) -> String {
        let position = position.withLock { $0 }
        let outcomes = cancelOutcomes.withLock { $0 }
        let answered = tally.answered
        var lines = ["interrupted after \(String(format: "%.1f", elapsed)) s:"]
        lines.append("  answered: \(answered == 0 ? "none" : "\(answered) (\(tally.summary))")")
        let left = inFlight.notDone().count
        if keeping {
            if left > 0 { lines.append("  left at the broker (--keep-on-interrupt): \(Plural.tasks(left)); `conveyor status ID` follows each") }
        } else {
            let cancelled = outcomes[.cancelled] ?? 0
            let running = outcomes.filter { $0.key != .cancelled && $0.key != .done }.values.reduce(0, +)
            if cancelled > 0 { lines.append("  cancelled while they waited at the broker: \(Plural.tasks(cancelled))") }
            if running > 0 || left > cancelled {
                let count = max(running, left - cancelled)
                lines.append("  still running at the broker: \(Plural.tasks(count)) (they finish there; `conveyor status ID` has each result)")
            }
        }
        if position.inSubmit > 0 {
            lines.append("  being submitted, not answered by the broker yet: \(Plural.tasks(position.inSubmit))")
        }
        let resume = "resume from line \(position.submittedThrough + 1)"
        if let total {
            let notSubmitted = total - position.tasks - position.inSubmit
            if notSubmitted > 0 { lines.append("  not submitted: \(Plural.tasks(notSubmitted)); \(resume)") }
        } else if position.inputFinished != true {
            lines.append("  not submitted: the rest of the input; \(resume)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Answers counted by status; one lock per answer.
final class Tally: Sendable {
    /// `TaskStatus.allCases`, made once (the synthesized property builds an array per call).
    private static let statuses = TaskStatus.allCases
    private let counts = Mutex<[Int]>(Array(repeating: 0, count: TaskStatus.allCases.count))
    private let doneCount = Atomic<Int>(0)

    func add(_ status: TaskStatus) {
        let slot = Self.statuses.firstIndex(of: status) ?? 0
        counts.withLock { $0[slot] += 1 }
        doneCount.add(1, ordering: .relaxed)
    }

    func count(_ status: TaskStatus) -> Int {
        counts.withLock { $0[Self.statuses.firstIndex(of: status) ?? 0] }
    }

    /// Answers so far (lines that are not JSON included).
    var answered: Int { doneCount.load(ordering: .relaxed) }

    /// Answers that were not `ok`.
    var failed: Int { answered - count(.ok) }

    /// "ok 98, error 2".
    var summary: String {
        let counts = counts.withLock { $0 }
        return zip(Self.statuses, counts).filter { $0.1 > 0 }.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", ")
    }
}

/// The handles of submitted batches whose tasks are not all answered, for the interrupt. A batch
/// leaves once all its tasks are done (checked from the oldest as new ones come).
final class InFlight: Sendable {
    private let batches = Mutex(Deque<[TaskHandle]>())

    func add(_ handles: [TaskHandle]) {
        batches.withLock { batches in
            while let first = batches.first, first.allSatisfy(\.isDone) { batches.removeFirst() }
            batches.append(handles)
        }
    }

    func notDone() -> [TaskHandle] {
        batches.withLock { $0.flatMap { $0.filter { !$0.isDone } } }
    }
}
