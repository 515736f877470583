import ConveyorProtocol
import ConveyorSystem
import Foundation
import Logging
import ZeroMQ

/// The consumer's I/O thread: the one owner of the DEALER socket to the broker. Each turn it
/// polls, sends the results the workers left, decodes what the broker sent, tells the
/// ``ConnectionStateMachine`` what happened and performs the effects it answers with. The
/// prefetch controller, the stuck-handler watchdog and the heartbeats are parts of their own.
///
/// Not `Sendable`: made, run and dropped on the I/O thread (ZeroMQ sockets belong to one thread).
final class ConsumerLoop {
    private let configuration: ConsumerConfiguration
    private let registry: TaskRegistry
    private let logger: Logger
    private let context: Context
    private let pool: ThreadPool
    private let runner: TaskRunner
    private let outboxes: ResultOutboxes
    private let stop: StopFlag
    /// Set with `stop` by ``Consumer/stopNow()``: the drain hands back what has not started and
    /// ends at once, without waiting for running tasks (the broker requeues them).
    private let stopNow: StopFlag
    private let host: String
    private let pid: Int

    private var machine: ConnectionStateMachine
    private var pace: PaceController
    private var watchdog: StuckWatchdog
    private var heartbeats: Heartbeats
    private var held: HeldTasks
    private var socket: Socket?
    /// The socket's monitor: says when the broker refused this consumer's key.
    private var monitor: SocketMonitor?
    private var monitorIndex = 0
    private var poller = Poller()
    private var socketIndex = 0
    private var wakeIndex = 0
    private var received = Multipart()
    /// Whether the last turn handed work to the pool (see ``waitForQuickResults()``).
    private var dispatched = false

    /// Handlers faster than this on average: the I/O thread briefly waits for the results of work
    /// it just handed out instead of sleeping.
    static let spinBelowNanoseconds: UInt64 = 20_000

    init(configuration: ConsumerConfiguration, registry: TaskRegistry, logger: Logger, pool: ThreadPool,
         outboxes: ResultOutboxes, stop: StopFlag, stopNow: StopFlag, host: String, pid: Int) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.context = try Context()
        self.pool = pool
        self.outboxes = outboxes
        self.stop = stop
        self.stopNow = stopNow
        self.host = host
        self.pid = pid
        runner = TaskRunner(configuration: configuration, registry: registry, logger: logger, outboxes: outboxes,
                            pool: pool, infoTemplate: ResultInfo(host: host, pid: pid, process: configuration.processIndex))
        let now = monotonicNanoseconds()
        pace = PaceController(threads: configuration.threads, prefetch: configuration.prefetch, now: now)
        machine = ConnectionStateMachine(capacity: pace.initialCapacity, drainTimeout: configuration.drainTimeout.nanoseconds)
        watchdog = StuckWatchdog(slots: outboxes.slots)
        heartbeats = Heartbeats(interval: configuration.heartbeatInterval, liveness: configuration.liveness, now: now)
        held = HeldTasks(now: now)
    }

    /// Runs until the connection stops: returns after a drain that finished, throws
    /// ``Consumer/DrainTimedOut``, ``Consumer/StuckHandler`` or ``Consumer/ProtocolMismatch``
    /// otherwise (or a ZeroMQ error).
    func run() throws {
        logger.info("consumer connecting", metadata: [
            "broker": "\(configuration.backend)", "consumer.threads": "\(configuration.threads)",
            "consumer.pid": "\(pid)", "consumer.tasks": "\(registry.names.joined(separator: ","))",
        ])
        try perform { machine in try machine.start() }
        while true {
            if stop.isSet && machine.acceptsWork {
                logger.notice("consumer draining: running tasks finish (up to the drain timeout), unstarted ones go back to the broker; a second signal stops at once", metadata: [
                    "tasks.held": "\(machine.held)", "drain_timeout_s": "\(configuration.drainTimeout.milliseconds / 1000)",
                ])
                try perform { machine in try machine.beginDrain(now: monotonicNanoseconds()) }
            }
            if case .draining = machine.state {
                // Stopping now: the deadline counts as passed, so the drain ends at this turn.
                let now = stopNow.isSet ? UInt64.max : monotonicNanoseconds()
                try perform { machine in try machine.finishDrain(now: now) ?? [] }
            }
            if case .stopped(let reason) = machine.state { return try end(reason) }
            try turn()
        }
    }

    /// One poll and what follows it.
    private func turn() throws {
        waitForQuickResults()
        dispatched = false
        // While results sit in the outboxes without a wake-up (workers gather a batch), look
        // every millisecond.
        let timeout = outboxes.resultsWaiting ? 1 : heartbeats.pollTimeoutMilliseconds
        try poller.poll(timeout: .milliseconds(timeout))
        if poller.isReadable(wakeIndex) { outboxes.wakeup.reset() }
        try flushResults()
        if poller.isReadable(monitorIndex), let monitor {
            while let event = try monitor.next(timeout: .zero) {
                guard event.kind == .handshakeFailedAuth else { continue }
                // libzmq does not retry such a connection; the broker-silence reconnect below does.
                logger.error("the broker refused this consumer's CURVE key: it is not on the broker's clients file, or has no consume role", metadata: [
                    "broker": "\(configuration.backend)", "status": "\(event.value)",
                ])
            }
        }
        if poller.isReadable(socketIndex) { try receive() }
        if case .stopped = machine.state { return }
        let now = monotonicNanoseconds()
        if let monitor = configuration.monitor {
            let ready = if case .ready = machine.state { true } else { false }
            monitor.noteTurn(at: now, held: machine.held, registered: ready)
        }
        if let stuck = watchdog.check(now: now) {
            logger.critical("handler stuck past its hard limit; handing back work and exiting for replacement", metadata: [
                "task.id": "\(stuck.id)", "task.name": "\(stuck.name)", "tasks.held": "\(machine.held)",
            ])
            try perform { machine in try machine.fail(.handlerStuck(taskID: stuck.id, name: stuck.name)) }
            return
        }
        if let wanted = pace.check(now: now, current: machine.capacity, draining: machine.isDraining) {
            logger.debug("new capacity", metadata: ["capacity": "\(wanted)", "previous": "\(machine.capacity)"])
            try perform { machine in try machine.announce(capacity: wanted) }
        }
        if let renewing = held.renewalDue(now: now, interval: heartbeats.interval), let socket {
            try Self.renew(renewing, on: socket)
            heartbeats.sent(now: now)
        }
        if heartbeats.heartbeatDue(now: now), let socket {
            try OutgoingMessage(.heartbeat).send(on: socket, flags: .dontWait)
            heartbeats.sent(now: now)
        }
        if heartbeats.brokerSilent(now: now) {
            logger.warning("broker silent; reconnecting", metadata: ["broker": "\(configuration.backend)"])
            try perform { machine in try machine.reconnect(brokerRequeued: false) }
        }
    }

    /// Tiny tasks were just handed to idle workers: their results come within microseconds. Wait
    /// for them here rather than sleep in poll and be woken, which takes a wake-up out of every
    /// round trip (at most 50 µs, only while handlers measure under 20 µs).
    private func waitForQuickResults() {
        guard dispatched && pace.recentAverage < Self.spinBelowNanoseconds else { return }
        let until = monotonicNanoseconds() &+ 50_000
        while !outboxes.resultsWaiting && monotonicNanoseconds() < until {}
    }

    /// Reads what the broker sent, up to 256 messages a turn.
    private func receive() throws {
        guard let socket else { return }
        var handled = 0
        while handled < 256, try socket.receiveMultipart(into: &received, flags: .dontWait) {
            handled += 1
            heartbeats.heard(now: monotonicNanoseconds())
            try handle(received)
            // A reconnect replaced the socket, or the connection stopped: read no more from this one.
            guard self.socket === socket, machine.acceptsWork || machine.isDraining else { return }
        }
    }

    private func handle(_ frames: Multipart) throws {
        let envelope: Envelope
        do {
            envelope = try Envelope(frames, fromRouter: false)
        } catch .unsupportedVersion(let tag) {
            // A broker of another protocol version will never dispatch here: stop, and say why.
            try perform { machine in try machine.fail(.protocolMismatch(tag)) }
            return
        } catch {
            logger.warning("bad message from broker dropped", metadata: ["error": "\(error)"])
            return
        }
        apply { machine in try machine.heard() }
        switch envelope.command {
        case .dispatch:
            var jobs: [ThreadPool.Job] = []
            for group in envelope.groups { jobs.append(runner.makeJob(group, version: envelope.version)) }
            apply { machine in try machine.tasksArrived(jobs.count) }
            if machine.acceptsWork {
                for group in envelope.groups { held.arrived(group[group.startIndex].string) }
                pool.enqueue(jobs)
                if !jobs.isEmpty { dispatched = true }
            } else {
                jobs.forEach { $0.cancel() }
            }
        case .revoke:
            // Give back what has not started (a DONE `requeue` each, with the next results);
            // a task that started runs on, and the broker hears nothing more of the REVOKE.
            for group in envelope.groups {
                let id = group[group.startIndex].string
                if let job = pool.takePending(id: id) {
                    logger.debug("task revoked before it started", metadata: ["task.id": "\(id)"])
                    job.cancel()
                }
            }
        case .heartbeat:
            break
        case .disconnect:
            logger.info("broker asked the consumer to reconnect")
            try perform { machine in try machine.reconnect(brokerRequeued: true) }
        case .error where envelope.refusesVersion(.current):
            // A broker of an older version answered in its own: it will never dispatch here.
            try perform { machine in try machine.fail(.protocolMismatch(envelope.version.tagText)) }
        case .error where envelope[0].string.contains("RENEW"):
            // A broker without leases (capability `leases`): renew nothing more.
            held.renewals = false
            logger.info("the broker does not take RENEW; leases are not renewed", metadata: ["error": "\(envelope[0].string)"])
        case .error where envelope[0].string.contains(" is not a producer command;"):
            // Connected to a broker's frontend: it will never dispatch here.
            try perform { machine in
                try machine.fail(.wrongEndpoint("\(configuration.backend) is a broker's frontend, where producers connect; consumers connect to its backend (--backend, default port 5556)"))
            }
        case .error where envelope[0].string.hasPrefix("refused "):
            logger.error("the broker refused a request of this consumer", metadata: ["error": "\(envelope[0].string)"])
        case .error:
            logger.error("broker reported a protocol error", metadata: ["error": "\(envelope[0].string)"])
        default:
            logger.warning("unexpected command from broker", metadata: ["command": "\(envelope.command)"])
        }
    }

    // MARK: Effects

    /// Runs a transition and performs its effects. An illegal transition is a bug of this loop: it
    /// is logged and refused (the machine did not change), never applied.
    private func perform(_ transition: (inout ConnectionStateMachine) throws -> [ConnectionStateMachine.Effect]) throws {
        let effects: [ConnectionStateMachine.Effect]
        do {
            effects = try transition(&machine)
        } catch {
            logger.error("consumer state machine refused a transition", metadata: ["error": "\(error)"])
            return
        }
        for effect in effects { try perform(effect) }
    }

    /// A transition without effects; refused ones are logged as in ``perform(_:)``.
    private func apply(_ transition: (inout ConnectionStateMachine) throws -> Void) {
        do {
            try transition(&machine)
        } catch {
            logger.error("consumer state machine refused a transition", metadata: ["error": "\(error)"])
        }
    }

    private func perform(_ effect: ConnectionStateMachine.Effect) throws {
        switch effect {
        case .connect:
            // The reconnect sequence, written once: a new socket, a new poller, fresh heartbeats;
            // then the machine says what to announce on it.
            socket = nil
            monitor = nil
            let (socket, monitor) = try connect()
            self.socket = socket
            self.monitor = monitor
            poller = Poller()
            socketIndex = poller.add(socket)
            monitorIndex = poller.add(monitor)
            wakeIndex = poller.add(fileDescriptor: outboxes.wakeup.readDescriptor)
            heartbeats.reset(now: monotonicNanoseconds())
            if case .reconnecting = machine.state {
                try perform { machine in try machine.connected() }
            }
        case .announce(let capacity, let update):
            guard let socket else { return }
            // Not waiting: with no peer (a handshake the broker refused) a blocking send would
            // never return, and a stop could not finish. The broker-silence reconnect announces again.
            if try announce(capacity: capacity, update: update, on: socket) {
                heartbeats.sent(now: monotonicNanoseconds())
            } else {
                logger.debug("READY not sent: no connection to the broker", metadata: ["capacity": "\(capacity)"])
            }
        case .handBackUnstarted(let atMost):
            let jobs = atMost.map { pool.takePending(atMost: $0) } ?? pool.takePending()
            for job in jobs { job.cancel() }
        case .flushResults:
            try flushResults()
        case .disconnect:
            guard let socket else { return }
            // Not waiting either: a broker that never hears it requeues by heartbeat expiry.
            if try !OutgoingMessage(.disconnect).send(on: socket, flags: .dontWait) {
                logger.debug("DISCONNECT not sent: no connection to the broker")
            }
        }
    }

    /// Sends what the workers finished; feeds the pace controller.
    private func flushResults() throws {
        let completed = outboxes.takeAll()
        guard !completed.isEmpty else { return }
        apply { machine in try machine.resultsSent(completed.count) }
        for item in completed { held.answered(item.id) }
        var ran = 0
        var total: UInt64 = 0
        for item in completed {
            if let elapsed = item.elapsedNanoseconds {
                ran += 1
                total &+= elapsed
            }
        }
        if ran > 0 { pace.record(count: ran, totalNanoseconds: total) }
        guard let socket else { return }
        Completed.send(completed, on: socket) { error in
            logger.error("could not send results", metadata: ["error": "\(error)"])
        }
        heartbeats.sent(now: monotonicNanoseconds())
    }

    /// RENEW messages for `ids`, 4,096 a message.
    private static func renew(_ ids: [String], on socket: Socket) throws {
        var start = 0
        while start < ids.count {
            var message = OutgoingMessage(.renew)
            for id in ids[start..<min(start + 4_096, ids.count)] { message.append(id) }
            try message.send(on: socket, flags: .dontWait)
            start += 4_096
        }
    }

    /// The end of the loop, after the machine stopped.
    private func end(_ reason: ConnectionStateMachine.StopReason) throws {
        switch reason {
        case .drained:
            logger.info("consumer stopped", metadata: ["tasks.abandoned": "0"])
        case .drainTimedOut(let abandoned):
            logger.info("consumer stopped", metadata: ["tasks.abandoned": "\(abandoned)"])
            // Tasks still running past the drain timeout cannot be joined; the broker requeues
            // them on DISCONNECT.
            throw Consumer.DrainTimedOut(abandoned: abandoned)
        case .handlerStuck(let taskID, let name):
            throw Consumer.StuckHandler(taskID: taskID, name: name)
        case .protocolMismatch(let tag):
            throw Consumer.ProtocolMismatch(brokerProtocol: tag)
        case .wrongEndpoint(let text):
            throw Consumer.Misconfigured(reason: text)
        }
    }

    // MARK: The socket

    private func connect() throws -> (Socket, SocketMonitor) {
        let socket = try Socket(context, type: .dealer)
        try socket.set(.linger, 2000)
        // Results wait for room (the broker's backpressure), but not forever: with no peer at
        // all a send would never return. What is not sent is requeued by the broker at lease end.
        try socket.set(.sendTimeout, Int32(Completed.sendTimeoutMilliseconds))
        try socket.set(.maxMessageSize, Limits.frameLimit(forMessageSize: configuration.maxMessageSize))
        try socket.set(.reconnectInterval, 1000)
        try socket.set(.reconnectIntervalMax, 8000)
        try socket.set(.sendHighWaterMark, 100_000)
        try socket.set(.receiveHighWaterMark, 100_000)
        if let serverKey = configuration.curveServerKey {
            let keys = try configuration.curveClientKeys ?? CurveKeyPair.generate()
            try socket.set(.curveServerKey, serverKey)
            try socket.set(.curvePublicKey, keys.publicKey)
            try socket.set(.curveSecretKey, keys.secretKey)
        }
        // Attached before zmq_connect, so that no event of the first connection is lost.
        let monitor = try SocketMonitor(socket)
        try socket.connect(configuration.backend)
        return (socket, monitor)
    }

    /// Sends READY without waiting; false when libzmq has no connection to queue it on.
    private func announce(capacity: Int, update: Bool, on socket: Socket) throws -> Bool {
        let info = ReadyInfo(capacity: capacity, tasks: registry.names, host: host, pid: pid,
                             threads: configuration.threads, process: configuration.processIndex,
                             heartbeatMilliseconds: configuration.heartbeatInterval.milliseconds,
                             update: update ? true : nil, capabilities: [Capability.revoke.rawValue])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var message = OutgoingMessage(.ready)
        message.append(Array(try encoder.encode(info)))
        return try message.send(on: socket, flags: .dontWait)
    }
}
