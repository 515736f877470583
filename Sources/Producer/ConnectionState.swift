/// The producer's connection to its broker, as its I/O thread sees it: the rules only, no socket.
/// The loop feeds it what it does and what the socket monitor reports, and carries out the
/// ``Action`` it answers. Owned by the I/O thread (a plain value, no lock).
///
/// ZeroMQ reconnects by itself; what the producer has to do is notice a *new* connection, which
/// may be to a new broker (restarted, its memory empty), and send again every task it has no
/// result for. That is safe, since the broker treats a known id as the same task, and it is
/// decided here, once: ``Action/resubmitPending``.
struct ConnectionState: Sendable {
    enum Phase: Sendable, Equatable, CustomStringConvertible {
        /// The loop has not connected its socket yet.
        /// Can go to `connecting` (``Event/start``) or `closed` (``Event/close``).
        case idle
        /// The socket is connecting for the first time; requests wait in libzmq's queue.
        /// Can go to `connected` (``Event/connected``: nothing to resend) or `closed`.
        case connecting
        /// A connection is up; `number` counts connections since the start, from 1.
        /// Can go to `reconnecting` (``Event/disconnected``: a dead broker found by heartbeats,
        /// or a broker that went away) or `closed`.
        case connected(number: Int)
        /// The connection dropped after `connections` connections; libzmq is making a new one.
        /// Can go to `connected` (``Event/connected``: resend what has no result) or `closed`.
        case reconnecting(connections: Int)
        /// The loop has ended. Terminal: every event is refused.
        case closed

        var description: String {
            switch self {
            case .idle: "idle"
            case .connecting: "connecting"
            case .connected(let number): "connected (connection \(number))"
            case .reconnecting(let connections): "reconnecting (after \(connections) connections)"
            case .closed: "closed"
            }
        }
    }

    enum Event: Sendable, Equatable, CustomStringConvertible {
        /// The socket was made and connected to the endpoint (`zmq_connect`).
        case start
        /// The monitor reported `ZMQ_EVENT_CONNECTED`.
        case connected
        /// The monitor reported `ZMQ_EVENT_DISCONNECTED`.
        case disconnected
        /// The loop is leaving (shutdown, or its socket failed).
        case close

        var description: String {
            switch self {
            case .start: "start"
            case .connected: "connected"
            case .disconnected: "disconnected"
            case .close: "close"
            }
        }
    }

    /// What the loop must do after a transition.
    enum Action: Sendable, Equatable {
        case none
        /// Send a SUBMIT again for every task without a result (``RequestTable/pendingSubmissions()``).
        case resubmitPending
    }

    private(set) var phase = Phase.idle
    /// Events refused so far (a monitor event out of order; 0 in every run seen so far).
    private(set) var refusedEvents = 0

    /// Applies `event`; an event the current phase does not allow changes nothing, is counted in
    /// ``refusedEvents`` and throws.
    mutating func handle(_ event: Event) throws(IllegalConnectionTransition) -> Action {
        switch (phase, event) {
        case (.idle, .start):
            phase = .connecting
            return .none
        case (.connecting, .connected):
            phase = .connected(number: 1)
            return .none
        case (.connected(let number), .disconnected):
            phase = .reconnecting(connections: number)
            return .none
        case (.reconnecting(let connections), .connected):
            phase = .connected(number: connections + 1)
            return .resubmitPending
        case (.idle, .close), (.connecting, .close), (.connected, .close), (.reconnecting, .close):
            phase = .closed
            return .none
        default:
            refusedEvents += 1
            throw IllegalConnectionTransition(phase: phase, event: event)
        }
    }
}

/// An event ``ConnectionState`` does not allow in its current phase.
struct IllegalConnectionTransition: Error, Equatable, CustomStringConvertible {
    let phase: ConnectionState.Phase
    let event: ConnectionState.Event

    var description: String { "connection event '\(event)' is not allowed while \(phase); ignored" }
}
