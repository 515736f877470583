import ConveyorSystem
import Synchronization
import ZeroMQ

/// A producer that cannot reach its broker says so within about a second
/// (``ProducerConfiguration/failWhenUnreachable``), on evidence from the transport only: libzmq's
/// monitor reports a connection attempt that failed (`ZMQ_EVENT_CONNECT_RETRIED`: refused, no
/// route, timed out) or a handshake that failed, while no connection was ever made. A broker that
/// is connected but slow is not this (the request timeout and the busy-broker rule apply).
extension Producer {
    /// The monitor's `event` while `phase`: whether it shows the broker cannot be reached.
    func noteReachability(_ event: SocketEvent, phase: ConnectionState.Phase) {
        guard configuration.failWhenUnreachable else { return }
        let reason: String
        switch (event.kind, phase) {
        case (.connected, _), (.handshakeSucceeded, _):
            unreachable.withLock { $0 = nil }
            return
        case (.connectRetried, .connecting):
            reason = "cannot reach a broker at \(configuration.broker): the connection was refused or failed; is `conveyor broker` running, and is this its frontend (producers connect to --frontend, default port 5555)?"
        case (.handshakeFailedProtocol, _), (.handshakeFailedNoDetail, _):
            // In any phase: libzmq says CONNECTED once the TCP connection is up, before the
            // ZMTP handshake that then fails (plain ZMTP against a CURVE broker).
            reason = "the handshake with the broker at \(configuration.broker) failed: "
                + (configuration.curveServerKey == nil
                    ? "if the broker uses CURVE, give its public key with --curve-server-key; or this is not a Conveyor broker's frontend"
                    : "this broker may not use CURVE, or its public key is not the one given with --curve-server-key")
        default:
            return
        }
        let first = unreachable.withLock { current -> Bool in
            defer { current = reason }
            return current == nil
        }
        if first { logger.debug("the broker cannot be reached", metadata: ["reason": "\(reason)"]) }
        failWhileUnreachable()
    }

    /// The broker answered from its backend (where consumers connect): this producer was given
    /// the wrong endpoint, and no request will ever be answered there. Everything fails at once,
    /// saying which port is which, whatever ``ProducerConfiguration/failWhenUnreachable`` says.
    func wrongPort() {
        let reason = "cannot reach a broker at \(configuration.broker): that is a broker's backend, where consumers connect; producers connect to its frontend (--frontend, default port 5555)"
        logger.error("connected to a broker's backend, not its frontend", metadata: ["broker": "\(configuration.broker)"])
        unreachable.withLock { $0 = reason }
        failWhileUnreachable()
    }

    /// Fails every waiting request while the broker cannot be reached; returns whether it did.
    @discardableResult
    func failWhileUnreachable() -> Bool {
        guard let reason = unreachable.withLock({ $0 }) else { return false }
        table.withLock { $0.failUnanswered(with: .unreachable(reason)) }.perform()
        return true
    }
}
