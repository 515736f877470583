public import ConveyorProtocol
import ConveyorSystem
import Synchronization

/// What the broker shows to a thread of someone else's (a metrics or health listener) without
/// touching its state: the broker's thread publishes a statistics snapshot once a second, and
/// notes every loop turn and whether it is ready. Reading it never waits for the broker.
public final class BrokerMonitor: Sendable {
    private let snapshot = Mutex<BrokerStatistics?>(nil)
    private let load = Mutex<NameLoad>(NameLoad())
    private let lastTurn = Atomic<UInt64>(0)
    private let readyFlag = Atomic<Bool>(false)

    public init() {}

    /// The newest statistics (at most a second old), once the broker has made any.
    public var statistics: BrokerStatistics? { snapshot.withLock { $0 } }

    /// Whether the broker's loop turned within `nanoseconds` (monotonic), or has not started yet:
    /// alive, not stuck. A broker still recovering a long journal is alive (``isReady`` says it is
    /// not ready), so that a liveness probe does not kill it in the middle of its recovery.
    public func turned(within nanoseconds: UInt64) -> Bool {
        let last = lastTurn.load(ordering: .relaxed)
        return last == 0 || monotonicNanoseconds() &- last <= nanoseconds
    }

    /// Bound, its journal recovered, taking tasks (not draining).
    public var isReady: Bool { readyFlag.load(ordering: .relaxed) }

    /// Tasks on consumers by name, from the same snapshot as ``statistics``.
    public var heldByName: NameLoad { load.withLock { $0 } }

    func publish(_ statistics: BrokerStatistics, held: NameLoad) {
        snapshot.withLock { $0 = statistics }
        load.withLock { $0 = held }
    }
    func noteTurn(at now: UInt64) { lastTurn.store(now, ordering: .relaxed) }
    func setReady(_ ready: Bool) { readyFlag.store(ready, ordering: .relaxed) }
}

/// Tasks held by consumers, by task name: on a thread, or in a prefetch buffer.
public struct NameLoad: Sendable {
    public var running: [String: Int] = [:]
    public var reserved: [String: Int] = [:]
}
