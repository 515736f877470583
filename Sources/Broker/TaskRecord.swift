import ConveyorProtocol
import ConveyorSystem
import ZeroMQ

/// Everything the broker knows of one task it accepted. Owned by the broker's I/O thread.
final class TaskRecord {
    enum State: Equatable {
        case queued
        /// Waiting out a retry backoff before it is queued again.
        case delayed
        case running(consumer: [UInt8])
        case done
    }

    let id: String
    let name: String
    /// The args JSON, copied out of the received message (emptied once the task is done).
    var args: [UInt8]
    let options: TaskOptions
    /// Routing id of the producer that submitted it; results go there.
    var producer: [UInt8]
    var state: State = .queued
    /// Attempts started so far.
    var attempts: UInt32 = 0
    /// Routing ids of the consumers it was sent to: a final result is taken only from one of
    /// them. The first is kept inline (most tasks are sent once), the others in an array.
    private var firstDispatch: [UInt8]?
    private var laterDispatches: [[UInt8]] = []
    /// The result, once done, while the retention keeps it.
    var result: StoredResult?
    /// Order of arrival, for first-in first-out within a priority.
    let sequence: UInt64
    /// When the task times out, queued or running (monotonic ns).
    let deadline: UInt64
    /// When a delayed retry may be queued again.
    var notBefore: UInt64 = 0

    init(id: String, name: String, args: [UInt8], options: TaskOptions,
         producer: [UInt8], sequence: UInt64, now: UInt64) {
        self.id = id
        self.name = name
        self.args = args
        self.options = options
        self.producer = producer
        self.sequence = sequence
        self.deadline = now &+ UInt64(options.timeoutMilliseconds) &* 1_000_000
    }

    var isQueued: Bool { state == .queued }

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

/// A consumer process connected to the backend.
final class ConsumerRecord {
    /// The consumer's routing id.
    let key: [UInt8]
    var info: ReadyInfo
    var names: Set<String>
    /// Ids of tasks dispatched to it and not yet answered.
    var inFlight: Set<String> = []
    var lastSeen: UInt64
    var lastSent: UInt64 = 0
    var completed = 0
    /// DISPATCH groups gathered during this loop turn, sent at its end or once a batch is full.
    var pending: OutgoingMessage?
    var pendingGroups = 0

    init(key: [UInt8], info: ReadyInfo, now: UInt64) {
        self.key = key
        self.info = info
        self.names = Set(info.tasks)
        self.lastSeen = now
    }

    var credit: Int { info.capacity - inFlight.count }

    /// The gathered DISPATCH message, if any, leaving none behind.
    func takePending() -> OutgoingMessage? {
        defer {
            pending = nil
            pendingGroups = 0
        }
        return pending
    }

    /// How long the consumer may stay silent: `liveness` intervals of the slower of the two
    /// heartbeat intervals, the broker's and the one the consumer announced in READY.
    func livenessNanos(broker interval: UInt64, liveness: Int) -> UInt64 {
        let announced = UInt64(min(max(0, info.heartbeatMilliseconds ?? 0), 60_000)) * 1_000_000
        return max(interval, announced) * UInt64(liveness)
    }
}
