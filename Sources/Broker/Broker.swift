import ConveyorProtocol
import ConveyorSystem
import Foundation
public import Logging
import Synchronization
import ZeroMQ

/// The endpoints a broker actually bound (wildcard ports resolved).
public struct BoundEndpoints: Sendable, Equatable {
    public let frontend: String
    public let backend: String
}

/// A Conveyor broker: a ROUTER for producers (the frontend), a ROUTER for consumers (the
/// backend), and one I/O thread between them that owns both sockets and all task state.
///
/// ```swift
/// let broker = Broker(configuration: config, logger: logger)
/// let endpoints = try broker.start()
/// // ...
/// broker.stop()
/// broker.wait()
/// ```
public final class Broker: Sendable {
    private let configuration: BrokerConfiguration
    private let logger: Logger
    private let context: Context
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let failure = Mutex<(any Error)?>(nil)

    public init(configuration: BrokerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.context = try Context()
    }

    /// Binds both sockets on a new I/O thread and starts serving.
    /// - Returns: the endpoints bound, once they are bound.
    /// - Throws: the bind error (address in use, bad endpoint, ...).
    public func start() throws -> BoundEndpoints {
        let ready = DispatchSemaphore(value: 0)
        let bound = Mutex<Result<BoundEndpoints, any Error>?>(nil)
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-broker")
            let core: BrokerCore
            do {
                core = try BrokerCore(config: configuration, logger: logger, context: context)
                let endpoints = BoundEndpoints(frontend: try core.frontend.lastEndpoint,
                                               backend: try core.backend.lastEndpoint)
                bound.withLock { $0 = .success(endpoints) }
            } catch {
                bound.withLock { $0 = .failure(error) }
                ready.signal()
                finished.signal()
                return
            }
            ready.signal()
            do {
                try core.run { stopRequested.load(ordering: .relaxed) }
            } catch {
                logger.error("broker loop failed", metadata: ["error": "\(error)"])
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        thread.start()
        ready.wait()
        return try bound.withLock { $0! }.get()
    }

    /// Asks the broker to stop: it tells its peers and leaves its loop.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    /// Waits until the broker's thread has ended; rethrows what ended it, if anything failed.
    public func wait() throws {
        finished.wait()
        finished.signal()
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
