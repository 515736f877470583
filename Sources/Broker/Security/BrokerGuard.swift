import ConveyorSystem
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The broker's second thread, `conveyor-guard`: it answers libzmq's ZAP requests (when clients
/// are authenticated, through ``ClientAuthenticator``) and reads both sockets' monitors to keep
/// the connection cap (``ConnectionGate``). Its sockets (the ZAP handler's REP, the monitors'
/// PAIRs) are its own; it shares only the context with the broker thread, and only counters and
/// the clients file with anyone else.
///
/// Start it before the broker's sockets are made (``start(context:allowList:counters:logger:)``
/// returns once the ZAP handler is bound and the monitors are connected, so that no handshake
/// goes unauthenticated and no connection uncounted); the broker thread then calls
/// ``Socket/startMonitor(endpoint:events:)`` on each socket with ``frontendMonitor`` and
/// ``backendMonitor``, and stops the guard after closing its sockets.
final class BrokerGuard: Sendable {
    private static let counter = Atomic<Int>(0)
    /// Where the broker's frontend and backend report their connections.
    let frontendMonitor: String
    let backendMonitor: String
    /// The events the broker's sockets report.
    static let events: SocketEventMask = [.accepted, .disconnected, .handshakeFailedProtocol, .handshakeFailedNoDetail]
    private let stop = StopFlag()
    private let finished = OneShot<Void>()
    /// Why the guard thread stopped serving, if it failed: the broker then stops too, since
    /// handshakes would go unanswered (or, without a ZAP handler, unauthenticated).
    let failure = OneShot<String>()

    private init(number: Int) {
        frontendMonitor = "inproc://conveyor-guard-\(number)-frontend"
        backendMonitor = "inproc://conveyor-guard-\(number)-backend"
    }

    /// Starts the thread; returns once it serves, or throws what kept it from starting.
    static func start(context: Context, allowList: AllowListHolder?, counters: ConnectionCounters,
                      fileLimit: UInt64, logger: Logger) throws -> BrokerGuard {
        let guardian = BrokerGuard(number: counter.add(1, ordering: .relaxed).newValue)
        let ready = OneShot<Result<Void, ZMQError>>()
        let thread = Thread {
            setCurrentThreadName("conveyor-guard")
            defer { _ = guardian.finished.set(()) }
            let zap: ZAPHandler?
            let monitors: [SocketMonitor]
            do throws(ZMQError) {
                zap = try allowList.map { _ throws(ZMQError) in try ZAPHandler(context) }
                monitors = [try SocketMonitor(context: context, endpoint: guardian.frontendMonitor),
                            try SocketMonitor(context: context, endpoint: guardian.backendMonitor)]
            } catch {
                _ = ready.set(.failure(error))
                return
            }
            _ = ready.set(.success(()))
            let authenticator = allowList.map {
                ClientAuthenticator(allowList: $0, logger: logger, counters: counters)
            }
            let gate = ConnectionGate(counters: counters, fileLimit: fileLimit, logger: logger)
            do {
                try guardian.serve(zap: zap, authenticator: authenticator, monitors: monitors, gate: gate)
            } catch {
                logger.critical("the broker's guard thread failed; the broker stops", metadata: ["error": "\(error)"])
                _ = guardian.failure.set("\(error)")
            }
        }
        thread.start()
        guard let started = ready.waitBlocking(timeout: .seconds(30)) else {
            throw ZMQError(code: ETIMEDOUT, operation: "start the broker's guard thread")
        }
        try started.get()
        return guardian
    }

    private func serve(zap: ZAPHandler?, authenticator: ClientAuthenticator?, monitors: [SocketMonitor],
                       gate: ConnectionGate) throws(ZMQError) {
        var poller = Poller()
        let monitorIndexes = monitors.map { poller.add($0) }
        let zapIndex = zap.map { poller.add($0.socket) }
        var events: [SocketEvent] = []
        while !stop.isSet {
            try poller.poll(timeout: .milliseconds(200))
            for (monitor, index) in zip(monitors, monitorIndexes) where poller.isReadable(index) {
                events.removeAll(keepingCapacity: true)
                while events.count < 4096, let event = try monitor.next(timeout: .zero) { events.append(event) }
                gate.handle(events)
            }
            if let zap, let authenticator, let zapIndex, poller.isReadable(zapIndex) {
                while try zap.answerNext({ authenticator.decide($0) }) {}
            }
            gate.checkIfDue(now: monotonicNanoseconds())
        }
    }

    /// Stops the thread and waits for it; call after the broker's sockets are closed.
    func stopAndWait() {
        stop.set()
        _ = finished.waitBlocking(timeout: .seconds(5))
    }
}
