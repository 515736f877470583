import ConveyorJournal
import ConveyorProtocol
import ConveyorSystem
import Logging
import ZeroMQ

/// The broker's socket loop: both ROUTER sockets, owned by the one thread that runs ``run(stop:)``.
/// It polls, receives, decodes each message into an ``Envelope``, hands it to the
/// ``BrokerEngine``, and at the end of each turn flushes the ``SocketOutbox``. Nothing else.
final class BrokerLoop {
    let frontend: Socket
    let backend: Socket
    private let outbox: SocketOutbox
    private let engine: BrokerEngine<SocketOutbox>
    /// The durable broker's journal and the pipe its writer wakes this loop by once a batch is
    /// written; `nil` for a broker in memory.
    private let journal: Journal?
    private let wakeup: Wakeup
    /// The receive buffer, reused message after message.
    private var received = Multipart()
    /// With client authentication, the first frame of the message being handled, whose ZAP
    /// metadata says who sent it (``ReceivedCredentials``); `nil` otherwise.
    private let receivedCredentials: ReceivedCredentials?
    /// The thread that answers ZAP and counts connections: the loop stops if it fails.
    private let guardian: BrokerGuard

    /// How long one poll waits when nothing arrives.
    static let pollInterval: Duration = .milliseconds(50)
    /// How often timers (deadlines, backoffs, liveness, heartbeats) are looked at, in ns.
    static let tickNanoseconds: UInt64 = 20_000_000
    /// Messages read from one socket before the other gets its turn.
    static let receiveBurst = 512
    /// Messages queued per peer before libzmq drops (send) or stops reading (receive).
    static let highWaterMark: Int32 = 100_000
    /// How long a stopping broker waits for running tasks' results.
    private let drainTimeout: Duration
    /// Where other threads see the broker (metrics, health): ``BrokerConfiguration/monitor``.
    private let monitor: BrokerMonitor?
    /// How long the goodbyes may take to leave once the broker stops, in ms.
    static let goodbyeLinger: Int32 = 1000

    /// Creates both sockets and binds them. Call on the thread that will run the loop.
    init(config: BrokerConfiguration, logger: Logger, context: Context, journal: Journal?, wakeup: Wakeup,
         guardian: BrokerGuard, connections: ConnectionCounters) throws {
        self.journal = journal
        self.wakeup = wakeup
        self.monitor = config.monitor
        self.drainTimeout = config.drainTimeout
        self.guardian = guardian
        frontend = try Socket(context, type: .router)
        backend = try Socket(context, type: .router)
        let authenticated = config.clientAllowList != nil && config.curveSecretKey != nil
        receivedCredentials = authenticated ? ReceivedCredentials() : nil
        for (socket, side) in [(frontend, BrokerSide.frontend), (backend, .backend)] {
            // Counted by the guard thread from the first connection on (docs/RELIABILITY.md).
            try socket.startMonitor(endpoint: side == .frontend ? guardian.frontendMonitor : guardian.backendMonitor,
                                    events: BrokerGuard.events)
            try socket.set(.handshakeInterval, Int32(clamping: config.handshakeTimeout.milliseconds))
            if authenticated {
                try socket.set(.zapDomain, side == .frontend ? ClientAuthenticator.frontendDomain : ClientAuthenticator.backendDomain)
            }
            try socket.set(.linger, 0)
            try socket.set(.routerMandatory, true)
            try socket.set(.routerHandover, true)
            try socket.set(.maxMessageSize, Limits.frameLimit(forMessageSize: config.maxMessageSize))
            try socket.set(.sendHighWaterMark, Self.highWaterMark)
            try socket.set(.receiveHighWaterMark, Self.highWaterMark)
            if let secret = config.curveSecretKey {
                try socket.set(.curveServer, true)
                try socket.set(.curveSecretKey, secret)
            }
        }
        try frontend.bind(config.frontend)
        try backend.bind(config.backend)
        outbox = SocketOutbox(frontend: frontend, backend: backend, dispatchBatch: config.dispatchBatch, logger: logger,
                              holdsFrontend: journal != nil, unreadBudget: config.maxUnreadBytes,
                              unreadTotalBudget: config.maxUnreadTotal)
        engine = BrokerEngine(config: config, logger: logger, outbox: outbox, journal: journal)
        engine.credentials = receivedCredentials
        engine.connections = connections
    }

    /// Rebuilds the task state from the journal's replay; call before ``run(stop:)``.
    func restore(_ state: RecoveredState) {
        engine.table.journaling = true
        engine.table.restore(state)
        engine.restoreSchedules(state.schedules, now: .now)
        for entry in state.tasks.values where entry.owner != nil { engine.table[entry.id]?.submitter = entry.owner }
    }

    var endpoints: BoundEndpoints {
        get throws {
            BoundEndpoints(frontend: try frontend.lastEndpoint, backend: try backend.lastEndpoint)
        }
    }

    /// Serves until `stop` is set; then drains (no new tasks, no dispatches, results of running
    /// tasks still taken) until nothing runs, the drain timeout passes or `urgent` is set; then
    /// says goodbye to every peer and makes the journal durable.
    func run(stop: StopFlag, urgent: StopFlag) throws {
        var poller = Poller()
        let front = poller.add(frontend)
        let back = poller.add(backend)
        let woken = poller.add(fileDescriptor: wakeup.readDescriptor)
        var nextTick = monotonicNanoseconds()
        var nextPublish = nextTick
        var drainDeadline: UInt64?
        monitor?.setReady(true)
        while true {
            if stop.isSet {
                if drainDeadline == nil {
                    monitor?.setReady(false)
                    engine.beginDrain(timeout: drainTimeout)
                    drainDeadline = monotonicNanoseconds() &+ drainTimeout.nanoseconds
                }
                if urgent.isSet || !engine.drainWaits || monotonicNanoseconds() >= drainDeadline! { break }
            }
            if let journal {
                // Woken by the journal's writer only while waiting here: release what it has
                // written so far after saying so, and poll.
                wakeup.beginWait()
                outbox.release(upTo: journal.releasedBatch)
            }
            try poller.poll(timeout: Self.pollInterval)
            wakeup.endWait()
            if let failure = guardian.failure.value { throw BrokerStartError(underlying: "the broker's guard thread failed: \(failure)") }
            let turnStarted = monotonicNanoseconds()
            if poller.isReadable(woken) { wakeup.reset() }
            if poller.isReadable(back) { try receive(from: backend, side: .backend) }
            if poller.isReadable(front) { try receive(from: frontend, side: .frontend) }
            let now = BrokerInstant.now
            if now.monotonic >= nextTick {
                engine.tick(now: now)
                nextTick = now.monotonic + Self.tickNanoseconds
                if let monitor, now.monotonic >= nextPublish {
                    let held = engine.table.heldByName()
                    monitor.publish(engine.statistics(), held: NameLoad(running: held.running, reserved: held.reserved))
                    nextPublish = now.monotonic + 1_000_000_000
                }
            }
            flush(now: now)
            commit()
            engine.noteTurn(nanoseconds: monotonicNanoseconds() &- turnStarted)
            monitor?.noteTurn(at: now.monotonic)
        }
        // Give the goodbyes time to leave before the sockets close.
        try? frontend.set(.linger, Self.goodbyeLinger)
        try? backend.set(.linger, Self.goodbyeLinger)
        engine.sayGoodbye()
        flush(now: .now)
        if let journal {
            commit()
            // Everything written and synced: what was held may go.
            journal.close()
            outbox.release(upTo: .max)
        }
    }

    /// Hands the turn's journal records to the writer; the messages to producers that the turn
    /// made wait for them, and those whose records are written go.
    private func commit() {
        guard let journal else { return }
        outbox.hold(until: engine.commitJournal(to: journal))
        outbox.release(upTo: journal.releasedBatch)
    }

    private func receive(from socket: Socket, side: BrokerSide) throws {
        var handled = 0
        if let metadata = receivedCredentials?.metadata(on: side) {
            // With client authentication: one property lookup a message (libzmq's, no copy); the
            // rest is read only for a connection the engine has not met.
            while handled < Self.receiveBurst, try socket.receiveMultipart(into: &received, metadata: metadata, flags: .dontWait) {
                handled += 1
                handleReceived(side: side, connection: metadata.withProperty(AccessProperty.connection, AccessProperty.connectionNumber))
            }
        } else {
            while handled < Self.receiveBurst, try socket.receiveMultipart(into: &received, flags: .dontWait) {
                handled += 1
                handleReceived(side: side, connection: 0)
            }
        }
    }

    /// Decodes the message just received and hands it to the engine.
    @inline(__always)
    private func handleReceived(side: BrokerSide, connection: UInt64) {
        let envelope: Envelope
        do {
            envelope = try Envelope(received, fromRouter: true)
        } catch {
            engine.rejectBadInput(received, error: error, side: side)
            return
        }
        let now = BrokerInstant.now
        switch side {
        case .frontend: engine.handleFrontend(envelope, connection: connection, now: now)
        case .backend: engine.handleBackend(envelope, connection: connection, now: now)
        }
        removeUnreachable(now: now)
        // A task of a name at its concurrency limit finished: the name's waiting tasks go out.
        if engine.table.limitsNeedSettling(now: now.wall) { engine.table.settleLimits(now: now.wall) }
    }

    /// Sends what the turn gathered. A failed dispatch removes its consumer, which requeues its
    /// tasks and may route them to another consumer: so repeat until nothing new is pending.
    private func flush(now: BrokerInstant) {
        repeat {
            outbox.flush()
            removeUnreachable(now: now)
        } while outbox.hasPending
    }

    private func removeUnreachable(now: BrokerInstant) {
        let unreachable = outbox.takeUnreachable()
        if !unreachable.isEmpty { engine.remove(unreachable, reason: "consumer unreachable", now: now) }
    }
}

/// Who sent the message the loop is handling, from the ZAP metadata of its first frame: the
/// engine's ``CredentialReader`` when clients are authenticated. One holder per socket, received
/// into by ``BrokerLoop`` and read by the engine while it handles that message.
final class ReceivedCredentials: CredentialReader {
    private let frontend = MessageMetadata()
    private let backend = MessageMetadata()

    func metadata(on side: BrokerSide) -> MessageMetadata {
        side == .frontend ? frontend : backend
    }

    func access(on side: BrokerSide) -> PeerAccess? {
        let metadata = metadata(on: side)
        return AccessProperty.access(userID: metadata.property("\(AccessProperty.userID)"),
                                     roles: metadata.property("\(AccessProperty.roles)"),
                                     tasks: metadata.property("\(AccessProperty.tasks)"))
    }
}
