/// The consumer's connection to its broker as a state machine with no sockets in it: the socket
/// loop (``ConsumerLoop``) tells it what happened, and performs the ``Effect``s it answers with.
///
/// It owns what the broker believes about this consumer: the capacity announced in READY, and the
/// tasks held here (dispatched, their results not sent yet). Every transition is one method; an
/// illegal one throws ``IllegalTransition`` and leaves the machine as it was.
///
/// ```
/// idle ──start──▶ registering ──heard──▶ ready
/// registering, ready ──beginDrain──▶ draining ──finishDrain──▶ stopped
/// registering, ready, draining ──reconnect──▶ reconnecting ──connected──▶ registering (or draining)
/// registering, ready, draining ──fail──▶ stopped
/// ```
struct ConnectionStateMachine: Sendable {
    /// Where the connection is.
    enum State: Sendable, Equatable {
        /// Nothing connected yet. Allows: ``start()`` → `registering`.
        case idle
        /// Connected, READY sent, nothing heard from the broker on this connection yet.
        /// Allows: ``heard()`` → `ready`; ``announce(capacity:)`` (stays); ``beginDrain(now:)`` →
        /// `draining`; ``reconnect(brokerRequeued:)`` → `reconnecting`; ``fail(_:)`` → `stopped`.
        case registering
        /// The broker has spoken: tasks come, results go. Allows: ``heard()`` and
        /// ``announce(capacity:)`` (stays); ``beginDrain(now:)`` → `draining`;
        /// ``reconnect(brokerRequeued:)`` → `reconnecting`; ``fail(_:)`` → `stopped`.
        case ready
        /// Taking no more work (READY 0 sent), finishing what runs until `deadline` (monotonic
        /// nanoseconds). Allows: ``heard()`` (stays); ``finishDrain(now:)`` → `stopped` once nothing
        /// is held or the deadline passed; ``reconnect(brokerRequeued:)`` → `reconnecting` (the
        /// drain carries over); ``fail(_:)`` → `stopped`.
        case draining(deadline: UInt64)
        /// The old socket is given up and a new one is being made; `drainDeadline` is set when a
        /// drain was under way. Allows: ``connected()`` → `registering`, or `draining` again.
        case reconnecting(drainDeadline: UInt64?)
        /// Terminal: the loop ends, returning or throwing as `reason` says. Allows nothing.
        case stopped(StopReason)
    }

    /// Why the connection stopped.
    enum StopReason: Sendable, Equatable {
        /// A drain finished: nothing held any more.
        case drained
        /// A drain gave up at its deadline on tasks still running.
        case drainTimedOut(abandoned: Int)
        /// A handler stayed stuck past the hard limit.
        case handlerStuck(taskID: String, name: String)
        /// The broker speaks another protocol version (its tag).
        case protocolMismatch(String)
        /// The endpoint is not a broker's backend (it answered as a frontend): what it said.
        case wrongEndpoint(String)

        /// Whether the broker will never take this consumer's messages (results, DISCONNECT).
        var brokerUnreadable: Bool {
            switch self {
            case .protocolMismatch, .wrongEndpoint: true
            case .drained, .drainTimedOut, .handlerStuck: false
            }
        }
    }

    /// What the socket loop must do, in order, after a transition.
    enum Effect: Sendable, Equatable {
        /// Close the socket (if any) and connect a new one.
        case connect
        /// Send READY announcing `capacity` (an update of an earlier READY when `update`).
        case announce(capacity: Int, update: Bool)
        /// Hand back, as `requeue`, up to `atMost` (all when `nil`) of the tasks not started yet.
        case handBackUnstarted(atMost: Int?)
        /// Send the results that are waiting.
        case flushResults
        /// Send DISCONNECT: the broker requeues whatever is still held here.
        case disconnect
    }

    /// A transition the current state does not allow; the machine did not change.
    struct IllegalTransition: Error, Equatable, CustomStringConvertible {
        let transition: String
        let state: State
        var description: String { "illegal consumer connection transition '\(transition)' in state \(state)" }
    }

    private(set) var state = State.idle
    /// The capacity the last READY announced (0 while draining).
    private(set) var capacity: Int
    /// Tasks dispatched here whose results have not been sent.
    private(set) var held = 0
    /// How long a drain may take, in nanoseconds.
    let drainTimeout: UInt64

    /// - Parameters:
    ///   - capacity: the capacity the first READY announces.
    ///   - drainTimeout: how long a drain waits for running tasks, in nanoseconds.
    init(capacity: Int, drainTimeout: UInt64) {
        self.capacity = capacity
        self.drainTimeout = drainTimeout
    }

    /// Whether tasks that arrive now should run (they are handed back while draining).
    var acceptsWork: Bool {
        switch state {
        case .registering, .ready: true
        case .idle, .draining, .reconnecting, .stopped: false
        }
    }

    /// Whether a drain is under way (or carried over a reconnect).
    var isDraining: Bool {
        switch state {
        case .draining, .reconnecting(drainDeadline: .some): true
        default: false
        }
    }

    /// Tasks held beyond the announced capacity (after the pace slowed), at least 0.
    var surplus: Int { max(0, held - capacity) }

    private func refuse(_ transition: String) -> IllegalTransition {
        IllegalTransition(transition: transition, state: state)
    }

    // MARK: Transitions

    /// `idle` → `registering`: connect and announce.
    mutating func start() throws(IllegalTransition) -> [Effect] {
        guard case .idle = state else { throw refuse("start") }
        state = .registering
        return [.connect, .announce(capacity: capacity, update: false)]
    }

    /// A message came from the broker: `registering` → `ready`; `ready` and `draining` stay.
    mutating func heard() throws(IllegalTransition) {
        switch state {
        case .registering: state = .ready
        case .ready, .draining: break
        case .idle, .reconnecting, .stopped: throw refuse("heard")
        }
    }

    /// `count` tasks arrived in a DISPATCH: held until their results are sent. Allowed while
    /// connected (`registering`, `ready`, `draining`: a draining consumer hands them back).
    mutating func tasksArrived(_ count: Int) throws(IllegalTransition) {
        switch state {
        case .registering, .ready, .draining: held += count
        case .idle, .reconnecting, .stopped: throw refuse("tasksArrived")
        }
    }

    /// `count` results went out (in any state but `idle`: the last ones go after the machine
    /// stopped). Refused for more results than tasks held: credit never goes negative.
    mutating func resultsSent(_ count: Int) throws(IllegalTransition) {
        guard count <= held, state != .idle else { throw refuse("resultsSent(\(count)) with \(held) held") }
        held -= count
    }

    /// The pace moved: announce `newCapacity` (`registering`, `ready`; stays), and hand back the
    /// unstarted surplus if more is held than that.
    mutating func announce(capacity newCapacity: Int) throws(IllegalTransition) -> [Effect] {
        switch state {
        case .registering, .ready: break
        case .idle, .draining, .reconnecting, .stopped: throw refuse("announce")
        }
        capacity = newCapacity
        var effects: [Effect] = [.announce(capacity: newCapacity, update: true)]
        if surplus > 0 { effects.append(.handBackUnstarted(atMost: surplus)) }
        return effects
    }

    /// Stop asked for: `registering`/`ready` → `draining` until `now` + the drain timeout.
    /// Announces capacity 0 and hands back what has not started.
    mutating func beginDrain(now: UInt64) throws(IllegalTransition) -> [Effect] {
        switch state {
        case .registering, .ready: break
        case .idle, .draining, .reconnecting, .stopped: throw refuse("beginDrain")
        }
        state = .draining(deadline: now &+ drainTimeout)
        capacity = 0
        return [.announce(capacity: 0, update: false), .handBackUnstarted(atMost: nil)]
    }

    /// `draining` → `stopped` once nothing is held (`drained`) or the deadline has passed
    /// (`drainTimedOut`); `nil` while neither. Either way the last results go, then DISCONNECT.
    mutating func finishDrain(now: UInt64) throws(IllegalTransition) -> [Effect]? {
        guard case .draining(let deadline) = state else { throw refuse("finishDrain") }
        if held == 0 {
            state = .stopped(.drained)
        } else if now > deadline {
            state = .stopped(.drainTimedOut(abandoned: held))
        } else {
            return nil
        }
        return [.flushResults, .disconnect]
    }

    /// Give up the connection: the broker said DISCONNECT (`brokerRequeued`: it has requeued what
    /// it sent here, so unstarted tasks are dropped, as `requeue`, rather than run twice) or went
    /// silent. `registering`/`ready`/`draining` → `reconnecting`.
    mutating func reconnect(brokerRequeued: Bool) throws(IllegalTransition) -> [Effect] {
        switch state {
        case .registering, .ready: state = .reconnecting(drainDeadline: nil)
        case .draining(let deadline): state = .reconnecting(drainDeadline: deadline)
        case .idle, .reconnecting, .stopped: throw refuse("reconnect")
        }
        return brokerRequeued ? [.handBackUnstarted(atMost: nil), .connect] : [.connect]
    }

    /// The new socket is connected: `reconnecting` → `registering` (announcing the capacity), or
    /// back to `draining` (announcing 0) when a drain was under way.
    mutating func connected() throws(IllegalTransition) -> [Effect] {
        guard case .reconnecting(let drainDeadline) = state else { throw refuse("connected") }
        if let drainDeadline {
            state = .draining(deadline: drainDeadline)
            return [.announce(capacity: 0, update: false)]
        }
        state = .registering
        return [.announce(capacity: capacity, update: false)]
    }

    /// The connection cannot go on (a stuck handler, a broker of another protocol version):
    /// `registering`/`ready`/`draining` → `stopped(reason)`. Hands back what has not started,
    /// sends what finished, and says DISCONNECT so that the broker requeues the rest at once.
    /// `reason` must be ``StopReason/handlerStuck(taskID:name:)`` or
    /// ``StopReason/protocolMismatch(_:)``: a drain ends through ``finishDrain(now:)``.
    mutating func fail(_ reason: StopReason) throws(IllegalTransition) -> [Effect] {
        switch reason {
        case .handlerStuck, .protocolMismatch, .wrongEndpoint: break
        case .drained, .drainTimedOut: throw refuse("fail(\(reason))")
        }
        switch state {
        case .registering, .ready, .draining: break
        case .idle, .reconnecting, .stopped: throw refuse("fail")
        }
        state = .stopped(reason)
        if reason.brokerUnreadable {
            // This broker will never take our results or our DISCONNECT in a protocol it reads.
            return [.handBackUnstarted(atMost: nil)]
        }
        return [.handBackUnstarted(atMost: nil), .flushResults, .disconnect]
    }
}
