import ConveyorProtocol
import ConveyorSystem
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Submits tasks to a broker and hands back their results: a swift-service-lifecycle `Service`.
///
/// ``run()`` runs the producer's I/O loop on an OS thread of its own (never on Swift's cooperative
/// pool), which owns the DEALER socket; `async` callers on any thread leave requests in a locked
/// table and wake it through a pipe. Many Swift tasks may submit at once; the
/// ``ProducerConfiguration/window`` bounds the tasks in flight, and a broker that does not answer
/// gives ``ProducerError/brokerTimeout(endpoint:waited:)``, never a hang.
///
/// For a producer used for one scope (a command, a test, a script), ``withProducer(_:logger:_:)``
/// runs the service around a closure:
///
/// ```swift
/// try await withProducer(.init(broker: "tcp://127.0.0.1:5555"), logger: logger) { producer in
///     let handle = try await producer.submit("echo", json: #"{"hello": 1}"#)
///     print(await handle.result().body)
/// }
/// ```
///
/// In an application, put it in the `ServiceGroup` before the services that use it (a group
/// shuts its services down in reverse order, so they stop before it does); the group's graceful
/// shutdown stops it:
///
/// ```swift
/// let producer = Producer(configuration: .init(broker: endpoint), logger: logger)
/// let group = ServiceGroup(services: [producer, MyHTTPServer(producer: producer)], logger: logger)
/// try await group.run()
/// ```
///
/// (A `conveyor`-style executable uses `ConveyorServices.run(_:logger:started:)` instead, which
/// runs such a group with SIGINT/SIGTERM taken by the self-pipe handler.)
///
/// Calls made before ``run()`` starts are not refused: they wait in the request table, and the
/// loop sends them as soon as it runs (so a service that starts beside the producer in a group
/// need not wait for it). Their timeouts count from the call: a producer whose `run()` starts
/// more than ``ProducerConfiguration/requestTimeout`` late fails them with
/// ``ProducerError/brokerTimeout(endpoint:waited:)`` at its first turn, and one shut down before
/// it ever ran fails them with ``ProducerError/closed`` at once. A producer that is never run
/// leaves them waiting: run it, or use ``withProducer(_:logger:_:)``.
/// A producer runs once: a second ``run()`` throws `ServiceStateError`.
public final class Producer: Service, Sendable {
    public let configuration: ProducerConfiguration
    let logger: Logger
    /// Shared by callers and the I/O thread; see ``RequestTable``.
    let table: Mutex<RequestTable>
    /// Wakes the I/O thread out of its poll.
    let wakeup = Wakeup()
    /// The broker's limit on a task's args, as its HELLO said (Producer+MessageLimit.swift).
    let messageLimit = Mutex(MessageLimit())
    /// The capabilities the broker listed in its HELLO on the current connection; `nil` until it
    /// answers (Producer+MessageLimit.swift).
    let brokerCapabilities = Mutex<Set<Capability>?>(nil)
    /// Read by the I/O loop between polls; set by shutdown and by cancellation of ``run()``.
    let stop = StopFlag()
    let runState = ServiceRunState(service: "producer")
    let routingID: [UInt8]
    /// The first 8 bytes of every task id this producer makes.
    private let idPrefix: [UInt8]
    private let counter = Atomic<UInt64>(0)
    /// When to connect again after the broker refused this producer's key (monotonic ns; 0:
    /// not waiting). Read and written by the I/O thread.
    let reconnectAfterRefusal = Atomic<UInt64>(0)
    /// Set while a producer with ``ProducerConfiguration/failWhenUnreachable`` has never reached
    /// its broker and the transport said why (Producer+Unreachable.swift). I/O thread only.
    let unreachable = Mutex<String?>(nil)

    /// Makes a producer. Starts nothing: no thread, no socket, until ``run()``.
    /// - Parameter logger: where the producer logs (a reconnection, a broker of another protocol
    ///   version, a bad message); it never configures logging itself.
    public init(configuration: ProducerConfiguration = .init(), logger: Logger) {
        precondition(configuration.window > 0, "a producer's window must be at least 1")
        precondition(configuration.batch > 0, "a producer's batch must be at least 1")
        self.configuration = configuration
        self.logger = logger
        self.table = Mutex(RequestTable(limits: .init(configuration)))
        var generator = SystemRandomNumberGenerator()
        // A letter first, so that no id starts with "-" (a command line would take it for an
        // option) or "_"; then 7 characters of the 64: 47 random bits in all.
        let random = generator.next() as UInt64
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        idPrefix = [letters[Int(random % UInt64(letters.count))]] + Self.idCharacters(random >> 8, count: 7)
        // The routing id is not the id prefix, which every consumer sees in task ids: a peer that
        // knew a producer's routing id could take its connection over (ROUTER handover) and with
        // it the results on their way. 16 more random characters (96 bits) no one else sees.
        routingID = Array("producer-".utf8) + idPrefix + Array("-".utf8)
            + Self.idCharacters(generator.next(), count: 8) + Self.idCharacters(generator.next(), count: 8)
    }

    // MARK: Service

    /// Connects to the broker and serves requests until graceful shutdown (of the surrounding
    /// `ServiceGroup`, or ``beginGracefulShutdown()``) or until the calling task is cancelled.
    /// Then, as it ends, every call still waiting ends: tasks without a result get an `error`
    /// result, and waiting submits and requests throw ``ProducerError/closed``.
    ///
    /// The loop runs on a thread of its own; this waits for it without holding a cooperative
    /// thread, and returns once the socket is closed.
    /// - Throws: `ServiceStateError` when this producer runs or has run already; the socket's
    ///   error when it cannot be made or connected (a malformed endpoint).
    public func run() async throws {
        try runState.begin()
        defer { runState.end() }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await runOnDedicatedThread(name: "conveyor-prod", stop: stop) { [self] in
                    defer { closeTable() }
                    do {
                        try ioLoop()
                    } catch {
                        logger.error("producer loop failed", metadata: ["error": "\(error)"])
                        throw error
                    }
                }
            } onGracefulShutdown: { [self] in
                beginGracefulShutdown()
            }
        } onCancel: { [self] in
            beginGracefulShutdown()
        }
    }

    /// Stops the producer without waiting: every call still waiting ends at once as ``run()``
    /// describes, new calls fail with ``ProducerError/closed``, and the I/O loop leaves at its
    /// next turn (``run()`` then returns). Harmless to call again, or before ``run()`` (which then
    /// returns at once). Never blocks, so it is safe from a ``TaskHandle/whenDone(_:)`` callback.
    public func beginGracefulShutdown() {
        stop.set()
        closeTable()
        wakeup.signal()
    }

    /// Ends every call still waiting (see ``RequestTable/close(with:)``).
    func closeTable() {
        table.withLock { $0.close(with: .closed) }.perform()
    }

    // MARK: Task ids

    /// A new task id: 8 characters of a random 48-bit prefix of this producer and a 7-character
    /// counter, from a 64-character alphabet in ASCII order, so one producer's ids sort in
    /// submission order. 15 bytes, because Swift keeps strings of up to 15 UTF-8 bytes inline:
    /// such an id costs no allocation and compares without `memcmp` in every process it crosses.
    public func makeTaskID() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 15) { buffer in
            for i in 0..<8 { buffer[i] = idPrefix[i] }
            for i in 0..<7 { buffer[8 + i] = Self.idAlphabet[Int((number >> (6 * UInt64(6 - i))) & 63)] }
            return 15
        }
    }

    private static let idAlphabet = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

    /// The low `6 × count` bits of `value`, most significant first, one character per 6 bits.
    private static func idCharacters(_ value: UInt64, count: Int) -> [UInt8] {
        (0..<count).reversed().map { idAlphabet[Int((value >> (6 * UInt64($0))) & 63)] }
    }
}
