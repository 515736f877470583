import ConveyorProtocol
import ConveyorSystem
public import ZeroMQ

/// Everything a consumer process can be told at start.
public struct ConsumerConfiguration: Sendable {
    /// The broker's backend endpoint.
    public var backend = "tcp://127.0.0.1:5556"
    /// The broker's CURVE public key (32 bytes), for a broker with CURVE on: the connection is
    /// encrypted and the broker authenticated.
    public var curveServerKey: [UInt8]?
    /// The consumer's own CURVE key pair, for a broker that authenticates its clients: its public
    /// key must be on the broker's clients file with the `consume` role, and the task names it may
    /// serve there. `nil`: a fresh key pair per connection.
    public var curveClientKeys: CurveKeyPair?
    /// Worker threads in the pool.
    public var threads = 4
    /// Tasks the broker may send beyond the free threads: see ``Prefetch``.
    public var prefetch: Prefetch = .automatic()
    /// Heartbeat interval; the broker is presumed gone after `liveness` silent intervals.
    public var heartbeatInterval: Duration = .seconds(1)
    public var liveness = 4
    /// Index of this process under its supervisor, reported with every result.
    public var processIndex: Int?
    /// Largest args or result of one task in bytes: a larger result becomes an error result. The
    /// socket takes frames up to this plus ``Limits/packedFrameAllowance``.
    public var maxMessageSize: Int64 = Limits.defaultMaxMessageSize
    /// How long a drain waits for running tasks before giving up on them.
    public var drainTimeout: Duration = .seconds(60)
    /// The hard limit: a task still held this long past its own timeout means a handler is stuck.
    /// Threads cannot be killed safely, so the consumer then returns what it can, hands back what it
    /// has not started, and exits with ``Consumer/stuckExitCode`` for its supervisor to replace it.
    public var hardLimitGrace: Duration = .seconds(30)
    /// Where to append a line for every task a handler starts (``ExecutionLog``), if anywhere.
    public var executionLog: ExecutionLog?
    /// Where the consumer shows busy threads, held tasks and handler times to a metrics listener
    /// (``ConsumerMonitor``); `nil`: nowhere, at no cost.
    public var monitor: ConsumerMonitor?

    public init() {}
}

/// How many tasks a consumer holds beyond its free threads, waiting in its pool.
///
/// Held tasks hide the round trip to the broker (a thread that finishes finds its next task
/// already here) but are not available to other consumers, which matters for long tasks.
public enum Prefetch: Sendable, Equatable, CustomStringConvertible {
    /// Exactly this many (0: a task is only sent to a free thread, the fairest for long tasks).
    case fixed(Int)
    /// Enough to keep the threads busy for `buffer` at the pace the handlers have shown:
    /// `threads × buffer / average handler time`, at most `maximum`. None once a task takes
    /// `threads × buffer` or longer (long tasks stay with free threads, the fairest), up to
    /// `maximum` for tiny ones.
    /// The consumer starts at 0, measures its handlers, and announces a new capacity (READY) when
    /// the right one moves by more than a quarter, at most every 100 ms.
    case automatic(maximum: Int = 1_000, buffer: Duration = .milliseconds(5))

    /// `auto`, or a number of tasks.
    public init?(_ text: String) {
        if text == "auto" {
            self = .automatic()
        } else if let count = Int(text), count >= 0, count <= 100_000 {
            self = .fixed(count)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .fixed(let count): "\(count)"
        case .automatic: "auto"
        }
    }

    /// The prefetch for handlers that take `averageNanoseconds` each on `threads` threads.
    func count(threads: Int, averageNanoseconds: UInt64?) -> Int {
        switch self {
        case .fixed(let count):
            return count
        case .automatic(let maximum, let buffer):
            guard let averageNanoseconds else { return 0 }
            // Tasks the threads finish within `buffer` at this pace.
            let count = UInt64(threads) &* buffer.nanoseconds / max(averageNanoseconds, 100)
            return Int(min(UInt64(max(0, maximum)), count))
        }
    }
}
