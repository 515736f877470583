import ConveyorProducer
import ConveyorProtocol
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What the dashboard shows, gathered once a second from the broker while anyone watches
/// (`STATS` every second, the recent failures every other), with the last five minutes of
/// throughput and latency computed from the differences of consecutive snapshots. One hub per
/// gateway, whatever the number of browsers: a watcher costs the broker nothing more.
///
/// A `Service`: it polls only within ``idleAfter`` of the last reader, and once the group shuts
/// down ``isStopped`` turns true, which ends every event stream (an endless response would
/// otherwise hold the HTTP server's graceful shutdown).
final class DashboardHub: Service, Sendable {
    static let historyLength = 300
    static let idleAfter: Duration = .seconds(30)

    struct Point: Codable, Sendable {
        /// Seconds since the Unix epoch.
        var t: Double
        var throughput: Double
        var p50Ms: Double?
        var p99Ms: Double?
    }

    /// The newest snapshot, as JSON; ``version`` counts them.
    struct State: Sendable {
        var json: [UInt8]?
        var version = 0
        var lastRead = ContinuousClock.now
        var history: [Point] = []
        var failures: [RecentFailure] = []
        var previous: (at: Double, completed: Int, latency: BrokerStatistics.LatencyHistogram?)?
        var error: String?
    }

    private let producer: Producer
    private let logger: Logger
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)

    init(producer: Producer, logger: Logger) {
        self.producer = producer
        self.logger = logger
    }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// The newest snapshot and its version; marks the hub as watched.
    func latest() -> (json: [UInt8]?, version: Int) {
        state.withLock { state in
            state.lastRead = .now
            return (state.json, state.version)
        }
    }

    /// A snapshot made now, for the first read after an idle spell.
    func refreshIfIdle() async {
        if latest().json == nil || state.withLock({ $0.error != nil }) { await poll(tick: 0) }
    }

    func run() async throws {
        defer { stopped.store(true, ordering: .relaxed) }
        await cancelWhenGracefulShutdown {
            var tick = 0
            while !Task.isCancelled {
                let watched = self.state.withLock { ContinuousClock.now - $0.lastRead < Self.idleAfter }
                if watched {
                    await self.poll(tick: tick)
                    tick += 1
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func poll(tick: Int) async {
        let now = Date().timeIntervalSince1970
        do {
            let stats = try await producer.stats()
            var failures: [RecentFailure]?
            if tick % 2 == 0 { failures = try? await producer.recentFailures() }
            state.withLock { state in
                if let failures { state.failures = Array(failures.prefix(20)) }
                if let previous = state.previous, now > previous.at {
                    let window = stats.latency?.subtracting(previous.latency)
                    state.history.append(Point(t: now, throughput: Double(max(0, stats.totals.completed - previous.completed)) / (now - previous.at),
                                               p50Ms: window?.quantile(0.5).map { $0 * 1000 }, p99Ms: window?.quantile(0.99).map { $0 * 1000 }))
                    if state.history.count > Self.historyLength { state.history.removeFirst(state.history.count - Self.historyLength) }
                }
                state.previous = (now, stats.totals.completed, stats.latency)
                state.error = nil
                state.json = DashboardSnapshot(stats: stats, failures: state.failures, history: state.history, at: now).json
                state.version += 1
            }
        } catch {
            let text = "\(error)"
            state.withLock { state in
                if state.error == nil { logger.info("dashboard: the broker does not answer", metadata: ["error": "\(text)"]) }
                state.error = text
                state.json = DashboardSnapshot.unreachable(text, at: now)
                state.version += 1
            }
        }
    }
}
