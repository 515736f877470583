import ConveyorProtocol
import ConveyorSystem

/// The automatic-prefetch controller: measures how long the handlers take (from the results the
/// I/O thread sends) and says when the consumer should announce a new capacity.
///
/// With ``Prefetch/automatic(maximum:buffer:)`` the capacity is `threads + prefetch` for the pace
/// measured, announced when it moves by more than a quarter, at most every 100 ms. The recent
/// average also tells the I/O thread whether handlers are tiny enough to wait for their results
/// rather than sleep in poll. Owned by the I/O thread; times are monotonic nanoseconds.
struct PaceController: Sendable {
    let threads: Int
    let prefetch: Prefetch
    /// Tasks measured since `since`, and their handlers' total time.
    private var tasks: UInt64 = 0
    private var nanoseconds: UInt64 = 0
    private var since: UInt64
    private var nextCheck: UInt64
    /// When the last capacity update went out (`nil`: none yet).
    private var lastAnnouncement: UInt64?
    /// The handlers' recent average time in nanoseconds (`UInt64.max` until measured).
    private(set) var recentAverage = UInt64.max

    /// How often the measurement is looked at.
    static let checkInterval: UInt64 = 10_000_000
    /// The longest a measurement waits for a round of tasks (one per thread), and the shortest
    /// time between two capacity updates.
    static let announceInterval: UInt64 = 100_000_000

    init(threads: Int, prefetch: Prefetch, now: UInt64) {
        self.threads = threads
        self.prefetch = prefetch
        since = now
        nextCheck = now &+ Self.checkInterval
    }

    /// Threads plus prefetch for handlers of `averageNanoseconds` (`nil`: not measured), within
    /// the broker's limit on READY capacity.
    func capacity(averageNanoseconds: UInt64?) -> Int {
        min(threads + prefetch.count(threads: threads, averageNanoseconds: averageNanoseconds), Limits.maxCapacity)
    }

    /// The capacity a consumer announces before anything is measured.
    var initialCapacity: Int { capacity(averageNanoseconds: nil) }

    /// Results of `count` tasks whose handlers ran `totalNanoseconds` together.
    mutating func record(count: Int, totalNanoseconds: UInt64) {
        tasks &+= UInt64(count)
        nanoseconds &+= totalNanoseconds
    }

    /// Looks at the measurement (every 10 ms once a round of tasks is measured, every 100 ms at
    /// most otherwise: a new consumer finds its pace within its first few tasks).
    /// - Returns: the capacity to announce instead of `current`, or `nil` to keep it.
    mutating func check(now: UInt64, current: Int, draining: Bool) -> Int? {
        guard now >= nextCheck else { return nil }
        nextCheck = now &+ Self.checkInterval
        guard tasks >= UInt64(threads) || now >= since &+ Self.announceInterval else { return nil }
        let measured = (tasks: tasks, nanoseconds: nanoseconds)
        tasks = 0
        nanoseconds = 0
        since = now
        guard measured.tasks > 0 else { return nil }
        let average = measured.nanoseconds / measured.tasks
        recentAverage = average
        guard !draining, case .automatic = prefetch else { return nil }
        if let lastAnnouncement, now < lastAnnouncement &+ Self.announceInterval { return nil }
        let wanted = capacity(averageNanoseconds: average)
        guard wanted * 4 > current * 5 || wanted * 4 < current * 3 else { return nil }
        lastAnnouncement = now
        return wanted
    }
}
