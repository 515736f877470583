/// The transitions of the task state machine: one ``TaskTable`` method each, and each one the
/// unit a journal records (see ``TaskRecord/State`` for which state allows which).
enum TaskTransition: Int, CaseIterable, CustomStringConvertible, Sendable {
    /// (new) → queued (or straight on to running).
    case accept
    /// A resubmission of a task the broker holds: its state does not change, its results go to
    /// the producer's new route from now on (a journal records that too).
    case reroute
    /// queued → running(c): sent to a consumer; an attempt starts.
    case dispatch
    /// running (or a late result while queued/delayed) → done with the handler's result.
    case finish
    /// running (or late) → done with an error result: the handler's final error, or a retry
    /// when no attempts are left.
    case fail
    /// running → delayed: the handler failed and attempts are left.
    case retry
    /// running → queued: handed back unstarted by its consumer; the attempt does not count.
    case requeue
    /// running → queued: its consumer was lost; the attempt counts.
    case release
    /// running → done: its consumer was lost and the attempts for lost deliveries are used up.
    case exhaust
    /// delayed → queued: the backoff is over.
    case promote
    /// queued or delayed → done, cancelled by its producer.
    case cancel
    /// queued, delayed or running → done: the deadline passed.
    case expire
    /// done → forgotten: the result retention let it go.
    case evict
    /// A dead letter submitted again: a new record, queued.
    case revive
    /// running → queued: its lease ran out (its consumer neither answered nor renewed it); the
    /// attempt counts, and its consumer's thread stays counted busy until it answers.
    case reclaim
    /// running → done (cancelled): a producer cancelled it while it was reserved (in its
    /// consumer's prefetch buffer), the broker sent REVOKE, and the consumer handed it back
    /// unstarted.
    case revoke
    /// (new) → delayed: accepted with a `not_before` time still ahead (a scheduled task, not a
    /// retry: its attempts are 0); `promote` queues it when that time comes.
    case schedule

    var description: String {
        switch self {
        case .accept: "accept"
        case .reroute: "reroute"
        case .dispatch: "dispatch"
        case .finish: "finish"
        case .fail: "fail"
        case .retry: "retry"
        case .requeue: "requeue"
        case .release: "release"
        case .exhaust: "exhaust"
        case .promote: "promote"
        case .cancel: "cancel"
        case .expire: "expire"
        case .evict: "evict"
        case .revive: "revive"
        case .reclaim: "reclaim"
        case .revoke: "revoke"
        case .schedule: "schedule"
        }
    }
}
