import ConveyorProtocol
import ConveyorSystem

/// A task submitted and not finished. A class, so that the I/O thread's lookups and updates
/// touch one reference instead of copying (and retaining) every field.
final class PendingTask: @unchecked Sendable {
    // @unchecked Sendable: the `let`s never change; `group`, `accepted` and `detached` are read and
    // written only while the producer's lock is held (the task lives in `RequestTable.tasks`).
    let cell: TaskCell
    let name: String
    let args: [UInt8]
    let options: TaskOptions
    let acceptDeadline: UInt64
    let resultDeadline: UInt64
    /// The submit call waiting for the broker's answer, if any; `nil` once the broker answered.
    var group: AcceptGroup?
    var accepted = false
    /// Submitted without waiting for its result (``Producer/submitDetached(batch:)``): the task
    /// holds its window slot only until the broker accepts it, and then leaves the table.
    var detached: Bool

    init(cell: TaskCell, name: String, args: [UInt8], options: TaskOptions,
         acceptDeadline: UInt64, resultDeadline: UInt64, group: AcceptGroup?, detached: Bool = false) {
        self.cell = cell
        self.name = name
        self.args = args
        self.options = options
        self.acceptDeadline = acceptDeadline
        self.resultDeadline = resultDeadline
        self.group = group
        self.detached = detached
    }
}

/// One submit call (a task or a batch) waiting until the broker has answered each of its tasks.
///
/// The counting happens under the producer's lock (no lock of its own, and nothing per task but
/// an integer decrement); the call's one wait is a ``OneShot``, set outside the lock once the
/// group is *sealed* (every task of the call handed over: a batch larger than the window goes in
/// parts, and the count may touch zero between two parts) and every task answered.
final class AcceptGroup: @unchecked Sendable {
    // @unchecked Sendable: `remaining`, `sealed`, `error` and `refusals` are read and written only
    // while the producer's lock is held, or (`refusals`) by the submit call once `answered` is set,
    // when no one writes them any more.
    private var remaining = 0
    private var sealed = false
    /// The first error to throw: a refused task for a single submit, or `closed` for any.
    private var error: ProducerError?
    /// The results of the call's tasks that the broker did not accept (rejected, not answered in
    /// time), by id: what ``Producer/submitDetached(batch:)`` reports. Kept here rather than read
    /// from the tasks' cells, which are completed after the lock is released, possibly after the
    /// call has woken up.
    private(set) var refusals: [String: TaskResult] = [:]
    private let throwsTaskErrors: Bool
    /// Set once with what the submit call throws (`nil`: nothing).
    let answered = OneShot<ProducerError?>()

    init(throwsTaskErrors: Bool) { self.throwsTaskErrors = throwsTaskErrors }

    /// Under the lock: one more task of the call waits for the broker's answer.
    func add() { remaining += 1 }

    /// Under the lock: one task answered (`error` is `nil` when accepted; otherwise `refusal` is the
    /// result the task ends with). Returns the group when that completes it, for ``finish()``
    /// outside the lock.
    func settle(error: ProducerError?, refusal: TaskResult? = nil) -> AcceptGroup? {
        if let error, self.error == nil, throwsTaskErrors || error == .closed { self.error = error }
        if error != nil, let refusal { refusals[refusal.id] = refusal }
        remaining -= 1
        return sealed && remaining == 0 ? self : nil
    }

    /// Under the lock: every task of the call has been handed over. Returns the group when every
    /// one was answered already, for ``finish()`` outside the lock.
    func seal() -> AcceptGroup? {
        sealed = true
        return remaining == 0 ? self : nil
    }

    /// Outside the lock: wakes the submit call. Reads `error`, which no one writes any more once
    /// the group is sealed and complete.
    func finish() { answered.set(error) }
}

/// What the I/O thread is asked to send.
enum Request: Sendable {
    /// The task as it was pending when the request was made (what the SUBMIT frames carry).
    case submit(id: String, PendingTask)
    case status(String)
    case cancel(String)
    case stats
    case deadLetters(DeadLetterAction, id: String)
    case purge(String)
    /// `TASKS` with this query JSON.
    case tasks(String)
    /// An operator's command (`PAUSE`, `SCHEDULE`, `LIMIT`) with these body frames.
    case admin(Command, frames: [[UInt8]])
}

/// When a pending task's result is due at the latest.
struct ResultDeadline: Comparable, Sendable {
    let at: UInt64
    let id: String
    static func < (lhs: ResultDeadline, rhs: ResultDeadline) -> Bool { lhs.at < rhs.at }
}

/// When the broker's ACCEPTED or REJECTED for a task is due at the latest.
struct AcceptDeadline: Sendable {
    let at: UInt64
    let id: String
}

/// A submitter waiting for `count` window slots.
struct WindowWaiter: Sendable {
    let count: Int
    let continuation: CheckedContinuation<Void, any Error>
}

/// A task's end as the I/O thread learns it (a struct rather than a tuple: arrays of tuples look
/// their type metadata up at run time, on every result message).
struct Outcome: Sendable {
    let result: TaskResult
    /// What a submit still waiting for the broker's answer throws.
    let acceptError: ProducerError?
    /// The id the task was submitted under, when that is not the result's: a submit whose
    /// uniqueness key another task held gets that task's result (`RESULT` id `SUBMITTED HELD`).
    var submittedID: String? = nil
}

/// A result to hand to a task's cell once the lock is released.
struct CellResult: Sendable {
    let cell: TaskCell
    let result: TaskResult
}
