import ConveyorProtocol
import Synchronization
import ZeroMQ

/// A finished task on its way from a worker thread to the I/O thread.
struct Completed: Sendable {
    let id: String
    let status: DoneStatus
    let body: [UInt8]
    let info: [UInt8]
    /// How long the handler ran; `nil` for a task handed back unstarted.
    let elapsedNanoseconds: UInt64?

    /// The empty info frame of a result that did not run.
    static let noInfo: [UInt8] = Array("{}".utf8)
}

/// Where results wait for the I/O thread: one outbox per worker thread (``WorkerSlot``) and a
/// shared one for hand-backs (from the I/O thread itself or a shutdown). Workers wake the I/O
/// thread through `wakeup`, which it polls.
final class ResultOutboxes: Sendable {
    let slots: [WorkerSlot]
    let wakeup: Wakeup
    private let shared = Mutex<[Completed]>([])
    /// Results in the workers' outboxes that the I/O thread has not taken yet.
    private let waiting = Atomic<Int>(0)

    /// Results a worker gathers before it wakes the I/O thread while it still has prefetched work.
    static let batch = 32

    init(threads: Int, wakeup: Wakeup) {
        slots = (0..<threads).map { _ in WorkerSlot() }
        self.wakeup = wakeup
    }

    /// Whether results sit in the workers' outboxes (gathered without a wake-up).
    var resultsWaiting: Bool { waiting.load(ordering: .relaxed) > 0 }

    /// A hand-back or an early result, from any thread: always wakes the I/O thread.
    func post(_ completed: Completed) {
        shared.withLock { $0.append(completed) }
        wakeup.signal()
    }

    /// A worker's result. Wakes the I/O thread for the first result waiting (it then looks every
    /// millisecond while results keep coming), when the worker is about to run dry (`poolIdle`:
    /// no prefetched task left, it needs credit) or has gathered a batch: one wake-up per batch
    /// of results rather than per task.
    func workerFinished(_ completed: Completed, thread: Int, poolIdle: () -> Bool) {
        let held = slots[thread].outbox.withLock {
            $0.append(completed)
            return $0.count
        }
        let waitingNow = waiting.add(1, ordering: .relaxed).newValue
        if waitingNow == 1 || held >= Self.batch || poolIdle() { wakeup.signal() }
    }

    /// Everything waiting, hand-backs first. For the I/O thread.
    func takeAll() -> [Completed] {
        var completed = shared.withLock { outbox -> [Completed] in
            defer { outbox.removeAll(keepingCapacity: true) }
            return outbox
        }
        var fromWorkers = 0
        for slot in slots {
            slot.outbox.withLock { outbox in
                fromWorkers += outbox.count
                completed.append(contentsOf: outbox)
                outbox.removeAll(keepingCapacity: true)
            }
        }
        if fromWorkers > 0 { waiting.subtract(fromWorkers, ordering: .relaxed) }
        return completed
    }
}

extension Completed {
    /// How long a DONE message may wait for room on the socket (`ZMQ_SNDTIMEO`).
    static let sendTimeoutMilliseconds = 10_000

    /// A DONE message that found no room within ``sendTimeoutMilliseconds``.
    struct NotSent: Error, CustomStringConvertible {
        var description: String {
            "no room on the broker connection for \(Completed.sendTimeoutMilliseconds / 1000) s (the broker is gone or not reading); it requeues these tasks when their leases end"
        }
    }

    /// Sends `results` on `socket` as DONE messages, many results per message (up to 256 or a
    /// full message each). A send that fails is logged by `failed` and the rest still go.
    static func send(_ results: [Completed], on socket: Socket, failed: (any Error) -> Void) {
        var message = OutgoingMessage(.done)
        func flush() {
            do {
                if try !message.send(on: socket) { failed(NotSent()) }
            } catch {
                failed(error)
            }
            message = OutgoingMessage(.done)
        }
        for item in results {
            message.append(item.id)
            message.append(item.status.rawValue)
            message.append(item.body)
            message.append(item.info)
            if message.fieldCount >= 4 * 256 || message.isFull { flush() }
        }
        if !message.bodyIsEmpty { flush() }
    }
}
