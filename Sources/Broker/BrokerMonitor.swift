public import ConveyorProtocol
import ConveyorSystem
import Synchronization

/// What the broker shows to a thread of someone else's (a metrics or health listener) without
/// touching its state: the broker's thread publishes a statistics snapshot once a second, and
/// notes every loop turn and whether it is ready. Reading it never waits for the broker.
public final class BrokerMonitor: Sendable {
    private let snapshot = Mutex<BrokerStatistics?>(nil)
    private let lastTurn = Atomic<UInt64>(0)
    private let readyFlag = Atomic<Bool>(false)

    public init() {}

    /// The newest statistics (at most a second old), once the broker has made any.
    public var statistics: BrokerStatistics? { snapshot.withLock { $0 } }

    /// Whether the broker's loop turned within `nanoseconds` (monotonic): it is alive, not stuck.
    public func turned(within nanoseconds: UInt64) -> Bool {
        let last = lastTurn.load(ordering: .relaxed)
        return last != 0 && monotonicNanoseconds() &- last <= nanoseconds
    }

    /// Bound, its journal recovered, taking tasks (not draining).
    public var isReady: Bool { readyFlag.load(ordering: .relaxed) }

    func publish(_ statistics: BrokerStatistics) { snapshot.withLock { $0 = statistics } }
    func noteTurn(at now: UInt64) { lastTurn.store(now, ordering: .relaxed) }
    func setReady(_ ready: Bool) { readyFlag.store(ready, ordering: .relaxed) }
}
