import ConveyorProtocol
import Foundation

/// The JSON the dashboard's page reads (`GET /dashboard/api/snapshot` and each event of
/// `GET /dashboard/events`): the broker's `STATS` rearranged for the page, the recent failures
/// and the last minutes' throughput and latency. Field names in snake case, like the API.
struct DashboardSnapshot: Encodable {
    struct Name: Encodable {
        var name: String
        var queued, running, reserved, succeeded, failed, timedOut, cancelled: Int
        var oldestQueuedAgeS: Double?
        var paused: Bool
    }
    struct Consumer: Encodable {
        var host: String
        var pid: Int
        var process: Int?
        var identity: String?
        var threads, busy, reserved, prefetch, completed: Int
        var tasks: [String]
        var quarantined: Bool
    }
    struct Failure: Encodable {
        var at: Double
        var id, name, status, error: String
        var attempts: Int?
    }

    var at: Double
    var reachable = true
    var error: String?
    var uptimeS: Double?
    var queuedTotal = 0, running = 0, reserved = 0, delayed = 0, deadLetterTotal = 0, resultsKept = 0
    /// Tasks finished per second over the broker's last 10 s.
    var completedPerSecond: Double?
    var totals: BrokerStatistics.Totals?
    var names: [Name] = []
    var consumers: [Consumer] = []
    var deadLetters: [BrokerStatistics.DeadLetter] = []
    var failures: [Failure] = []
    var history: [DashboardHub.Point] = []
    var journal: BrokerStatistics.Journal?
    var paused: [String] = []

    init(stats: BrokerStatistics, failures: [RecentFailure], history: [DashboardHub.Point], at: Double) {
        self.at = at
        uptimeS = stats.uptime
        queuedTotal = stats.queuedTotal
        running = stats.running - (stats.reserved ?? 0)
        reserved = stats.reserved ?? 0
        delayed = stats.delayed ?? 0
        deadLetterTotal = stats.deadLetterTotal
        resultsKept = stats.resultsKept
        completedPerSecond = stats.completedRate10s
        totals = stats.totals
        let paused = Set(stats.paused ?? [])
        self.paused = paused.sorted()
        var figures = stats.names ?? [:]
        for (name, count) in stats.queued where figures[name] == nil {
            var figure = BrokerStatistics.NameFigures()
            figure.queued = count
            figures[name] = figure
        }
        for name in paused where figures[name] == nil { figures[name] = BrokerStatistics.NameFigures() }
        names = figures.keys.sorted().map { name in
            let f = figures[name]!
            return Name(name: name, queued: f.queued, running: f.running, reserved: f.reserved, succeeded: f.succeeded,
                        failed: f.failed, timedOut: f.timedOut, cancelled: f.cancelled,
                        oldestQueuedAgeS: stats.oldestQueuedAge?[name], paused: paused.contains(name))
        }
        consumers = stats.consumers.map { c in
            Consumer(host: c.host, pid: c.pid, process: c.process, identity: c.identity, threads: c.threads,
                     busy: min(c.inFlight, c.threads), reserved: max(0, c.inFlight - c.threads),
                     prefetch: max(0, c.capacity - c.threads), completed: c.completed, tasks: c.tasks,
                     quarantined: c.quarantined ?? false)
        }
        deadLetters = stats.deadLetters
        self.failures = failures.map { Failure(at: $0.at, id: $0.id, name: $0.name, status: $0.status, error: $0.error, attempts: $0.attempts) }
        self.history = history
        journal = stats.journal
    }

    static func unreachable(_ error: String, at: Double) -> [UInt8] {
        var snapshot = DashboardSnapshot(stats: .init(queued: [:], queuedTotal: 0, running: 0, consumers: [], producers: 0, resultsKept: 0,
                                                      totals: .init(), deadLetters: [], deadLetterTotal: 0),
                                         failures: [], history: [], at: at)
        snapshot.reachable = false
        snapshot.error = error
        snapshot.totals = nil
        return snapshot.json
    }

    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(self))) ?? Array(#"{"reachable":false,"error":"the snapshot did not encode"}"#.utf8)
    }
}
