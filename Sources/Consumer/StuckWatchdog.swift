import ConveyorSystem
import Synchronization

/// What one worker thread shares with the I/O thread: its finished results and the task it runs
/// now. Each worker locks only its own slot, so workers never contend with each other.
final class WorkerSlot: Sendable {
    /// A task running on this thread, with its hard limit (monotonic nanoseconds).
    struct Running: Sendable {
        let id: String
        let name: String
        let limit: UInt64
    }

    let outbox = Mutex<[Completed]>([])
    let running = Mutex<Running?>(nil)
}

/// The stuck-handler watchdog: every 100 ms the I/O thread looks at what each worker runs, and a
/// task still running past its hard limit (its deadline, or its start if later, plus the grace)
/// means a handler is stuck. Threads cannot be killed safely, so the consumer then ends for its
/// supervisor to replace it.
struct StuckWatchdog: Sendable {
    static let checkInterval: UInt64 = 100_000_000
    private let slots: [WorkerSlot]
    private var nextCheck: UInt64 = 0

    init(slots: [WorkerSlot]) { self.slots = slots }

    /// The first task past its hard limit, if it is time to look and there is one.
    mutating func check(now: UInt64) -> WorkerSlot.Running? {
        guard now >= nextCheck else { return nil }
        nextCheck = now &+ Self.checkInterval
        return slots.lazy.compactMap { slot in slot.running.withLock { $0 } }.first { now > $0.limit }
    }
}
