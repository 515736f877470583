import ConveyorSystem
public import CoreMetrics
import Synchronization

/// What a consumer process shows to a thread of someone else's (a metrics or health listener)
/// without touching its loop: threads busy in a handler, tasks held, whether it is registered
/// with a broker, when its loop last turned; and, through ``handlerDuration``, the time each
/// handler took by task name (swift-metrics `conveyor_handler_duration_seconds{name}`).
/// Reading it never waits for the consumer.
public final class ConsumerMonitor: Sendable {
    private let busy = Atomic<Int>(0)
    private let held = Atomic<Int>(0)
    private let registered = Atomic<Bool>(false)
    private let lastTurn = Atomic<UInt64>(0)
    /// One timer per task name served, made once: the worker threads only read the dictionary.
    private let timers: [String: CoreMetrics.Timer]

    /// A monitor for a consumer serving `names`, recording handler times through `factory`
    /// (`nil`: only the gauges).
    public init(names: [String], factory: (any MetricsFactory)?) {
        var timers: [String: CoreMetrics.Timer] = [:]
        if let factory {
            for name in names {
                timers[name] = CoreMetrics.Timer(label: "conveyor_handler_duration_seconds", dimensions: [("name", name)], factory: factory)
            }
        }
        self.timers = timers
    }

    /// Threads running a synchronous handler now (async handlers hold no thread).
    public var busyThreads: Int { busy.load(ordering: .relaxed) }
    /// Tasks this process holds: running, and waiting in its pool.
    public var heldTasks: Int { held.load(ordering: .relaxed) }
    /// Registered with a broker and taking tasks (not connecting, not draining).
    public var isRegistered: Bool { registered.load(ordering: .relaxed) }

    /// Whether the consumer's loop turned within `nanoseconds` (monotonic), or has not started
    /// yet (a process that is starting is alive).
    public func turned(within nanoseconds: UInt64) -> Bool {
        let last = lastTurn.load(ordering: .relaxed)
        return last == 0 || monotonicNanoseconds() &- last <= nanoseconds
    }

    func handlerStarted() { busy.add(1, ordering: .relaxed) }
    func handlerEnded() { busy.subtract(1, ordering: .relaxed) }

    func handled(_ name: String, nanoseconds: UInt64) {
        timers[name]?.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func noteTurn(at now: UInt64, held count: Int, registered isRegistered: Bool) {
        lastTurn.store(now, ordering: .relaxed)
        held.store(count, ordering: .relaxed)
        registered.store(isRegistered, ordering: .relaxed)
    }
}
