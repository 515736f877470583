import ConveyorJournal
import ConveyorProtocol

/// Everything the broker knows of one task it accepted. Owned by the broker's I/O thread.
///
/// Its `state` changes only inside ``TaskTable`` (the property's setter is private to this file
/// and ``TaskTable`` goes through ``move(to:)``), so that every change is one documented,
/// counted transition that a journal can record.
final class TaskRecord {
    /// Where a task stands. Each case lists the transitions (``TaskTable`` methods) it allows;
    /// ``TaskTable`` refuses and counts any other.
    ///
    /// ```
    ///            accept                dispatch
    ///   (new) ──────────▶ queued ─────────────────▶ running(c)
    ///   (new) ── schedule (not_before ahead) ──▶ delayed
    ///                      ▲  ▲ ◀──── requeue / release ───┘ │ │ │
    ///              promote │  └──────── (hand-back, lost) ───┘ │ │
    ///                      │                                   │ │ retry (attempts left)
    ///                   delayed ◀──────────────────────────────┘ │
    ///                                                            │ finish / fail / exhaust
    ///   queued, delayed ── cancel / expire ──▶ done ◀────────────┘        (and expire)
    ///   done ── evict ──▶ (forgotten)      done ── revive (dead-letter requeue) ──▶ new record, queued
    ///   running ── revoke (cancelled while reserved; handed back unstarted) ──▶ done
    /// ```
    enum State: Equatable {
        /// Waiting for a consumer with credit. Allows: `dispatch` → running; `cancel`, `expire`,
        /// and a late final result (`finish`/`fail`, from a consumer it was dispatched to
        /// earlier) → done.
        case queued
        /// Waiting until `notBefore`: out a retry backoff (attempts ≥ 1), or, accepted with a
        /// `not_before` time ahead (`schedule`), for its first run (attempts 0: `scheduled` in
        /// `STATUS`). Allows: `promote` → queued; `cancel`, `expire`, a late final result → done.
        case delayed
        /// Dispatched to the consumer with this routing id, which holds one unit of its credit.
        /// Allows: `finish`/`fail` → done; `retry` → delayed (attempts left) or done (none);
        /// `requeue` (handed back unstarted: the attempt does not count), `release` (its
        /// consumer lost: the attempt counts) and `reclaim` (its lease ran out: the attempt
        /// counts) → queued; `exhaust` (lost too often) → done; `expire` → done; `revoke` (a
        /// cancel while it was reserved, and its consumer handed it back unstarted) → done. Not
        /// `cancel` directly: a task on a thread is not cancelled.
        case running(consumer: [UInt8])
        /// Ended: the result is kept on the record while the retention keeps it. Allows only
        /// `evict` (the retention lets it go); a dead letter's `revive` makes a new record.
        case done
    }

    let id: String
    let name: String
    /// The args JSON, copied out of the received message (emptied once the task is done).
    var args: [UInt8]
    let options: TaskOptions
    /// Routing id of the producer that submitted it; results go there.
    var producer: [UInt8]
    /// What it counts against while not done: its submitter's share of the queue bounds, and its
    /// name's (``Shares``). The submitter's stays when a resubmission reroutes the results.
    let owner: ShareAccount
    let nameShare: ShareAccount
    /// CRC-32C of the args with bit 32 set, or 0 when they are not known (a result restored from
    /// the journal without them): a resubmission of the id must carry the same args.
    let argsDigest: UInt64
    /// Where the task stands; see ``State``. Changed only through ``move(to:)`` by ``TaskTable``.
    private(set) var state: State = .queued
    /// The state's case alone, kept with it by ``move(to:)``: the hot questions (``isQueued``,
    /// ``isHeld``, ``isDone``) read one byte instead of copying the state (and retaining the
    /// consumer's routing id it may carry).
    private(set) var phase: Phase = .queued

    enum Phase: UInt8 {
        case queued, delayed, running, done

        init(_ state: State) {
            switch state {
            case .queued: self = .queued
            case .delayed: self = .delayed
            case .running: self = .running
            case .done: self = .done
            }
        }
    }
    /// Attempts started so far.
    var attempts: UInt32 = 0
    /// Routing ids of the consumers it was sent to: a final result is taken only from one of
    /// them. The first is kept inline (most tasks are sent once), the others in an array.
    private var firstDispatch: [UInt8]?
    private var laterDispatches: [[UInt8]] = []
    /// The result, once done, while the retention keeps it.
    var result: StoredResult?
    /// Which dispatch of the broker sent it last (``TaskTable/isReserved(_:)``: a consumer starts
    /// tasks in the order they came).
    var dispatchNumber: UInt64 = 0
    /// The identity that submitted it, when clients are authenticated: its status and cancel are
    /// that identity's (and an admin's), and only it may resubmit the id. `nil` without client
    /// authentication, and for a dead letter requeued by an admin.
    var submitter: String?
    /// Order of arrival, for first-in first-out within a priority.
    let sequence: UInt64
    /// When the task times out, queued or running: wall-clock nanoseconds since the Unix epoch,
    /// counted from when it became ready to run (its acceptance, or its `not_before` time when
    /// that was later). Wall clock, so that the
    /// deadline means the same after a restart; time while the broker is down counts.
    let deadline: UInt64
    /// Its name's metrics, once looked up (``TaskTable/meter(of:)``); `nil` while metrics are off.
    var meter: NameMeter?
    /// When it became ready to run (wall-clock ns): its deadline less its timeout. For a task
    /// accepted with a `not_before` time ahead, that time (the broker keeps one time per task).
    var acceptedAt: UInt64 { deadline &- UInt64(options.timeoutMilliseconds) &* 1_000_000 }
    /// When a delayed task may be queued (wall-clock ns: the end of a retry backoff, or a
    /// scheduled task's `not_before`); while the task runs, when its
    /// lease runs out (``leaseExpiry``: one field for both, which never matter at once).
    var notBefore: UInt64 = 0

    /// While running: when the broker takes the task back unless its consumer renews the lease
    /// (wall-clock ns). Shares its storage with ``notBefore``, which matters only while delayed.
    var leaseExpiry: UInt64 {
        get { notBefore }
        set { notBefore = newValue }
    }

    convenience init(id: String, name: String, args: [UInt8], options: TaskOptions,
                     producer: [UInt8], owner: ShareAccount, nameShare: ShareAccount, sequence: UInt64, now: UInt64) {
        self.init(id: id, name: name, args: args, options: options, producer: producer, owner: owner,
                  nameShare: nameShare, sequence: sequence,
                  deadline: now &+ UInt64(options.timeoutMilliseconds) &* 1_000_000)
    }

    /// A task with its deadline given: one rebuilt from the journal.
    init(id: String, name: String, args: [UInt8], options: TaskOptions,
         producer: [UInt8], owner: ShareAccount, nameShare: ShareAccount, sequence: UInt64, deadline: UInt64) {
        self.id = id
        self.name = name
        self.args = args
        self.options = options
        self.producer = producer
        self.owner = owner
        self.nameShare = nameShare
        self.argsDigest = args.isEmpty ? 0 : Self.digest(args)
        self.sequence = sequence
        self.deadline = deadline
    }

    /// What ``argsDigest`` holds for `args`.
    static func digest(_ args: [UInt8]) -> UInt64 {
        args.withUnsafeBytes { digest($0) }
    }

    static func digest(_ args: UnsafeRawBufferPointer) -> UInt64 {
        1 << 32 | UInt64(CRC32C.checksum(args))
    }

    var isQueued: Bool { phase == .queued }
    var isRunning: Bool { phase == .running }
    var isDelayed: Bool { phase == .delayed }
    /// Waiting for its `not_before` time before its first run (not a retry backoff).
    var isScheduled: Bool { phase == .delayed && attempts == 0 }
    /// Queued or delayed: what the queue bounds count.
    var isHeld: Bool { phase == .queued || phase == .delayed }
    var isDone: Bool { phase == .done }

    /// The consumer holding the task, while it runs.
    var holder: [UInt8]? {
        if case .running(let consumer) = state { return consumer }
        return nil
    }

    /// The one write of `state`. Only ``TaskTable`` calls it, after checking the transition.
    func move(to next: State) { phase = Phase(next); state = next }

    func recordDispatch(to consumer: [UInt8]) {
        if firstDispatch == nil {
            firstDispatch = consumer
        } else if !wasDispatched(to: consumer) {
            laterDispatches.append(consumer)
        }
    }

    func wasDispatched(to consumer: [UInt8]) -> Bool {
        firstDispatch == consumer || laterDispatches.contains(consumer)
    }
}

/// A finished task's result, kept on its record: its frames' bytes as received, to be sent again
/// untouched. A class, so that a record waiting in the queue pays 8 bytes for it, not 24.
final class StoredResult {
    let status: TaskStatus
    let body: [UInt8]
    let info: [UInt8]

    init(status: TaskStatus, body: [UInt8], info: [UInt8]) {
        self.status = status
        self.body = body
        self.info = info
    }
}
