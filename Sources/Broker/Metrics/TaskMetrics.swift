public import CoreMetrics

/// What became of tasks, by name, and how long they waited: `conveyor_tasks_total{name,status}`,
/// `conveyor_task_dispatch_latency_seconds{name}` and `conveyor_task_latency_seconds{name}`
/// (docs/OBSERVABILITY.md), through swift-metrics and whatever backend the application
/// bootstrapped (the CLI: swift-prometheus). Used on the broker's thread only.
///
/// The cost on the hot path is one pointer check per transition when metrics are off (the
/// records' ``TaskRecord/meter`` is `nil`), and an atomic add or a locked bucket count when on: the
/// record holds its name's ``NameMeter``, so no name is looked up per event.
final class TaskMetrics {
    private let factory: any MetricsFactory
    private var meters: [String: NameMeter] = [:]
    /// The meter last looked up: most tasks in a row have one name.
    private var last: NameMeter?

    init(factory: any MetricsFactory) { self.factory = factory }

    /// The meter of the tasks named `name`, made at its first use. Names are bounded by what the
    /// broker accepts (consumers' names and the identifier rules); a name's series stay once made.
    func meter(_ name: String) -> NameMeter {
        if let last, last.name == name { return last }
        if let found = meters[name] {
            last = found
            return found
        }
        let made = NameMeter(name: name, factory: factory)
        meters[name] = made
        last = made
        return made
    }
}

/// The series of one task name. Counters are made on their first use, so a scrape lists only
/// outcomes that happened.
final class NameMeter {
    let name: String
    private let factory: any MetricsFactory
    private var counters: [Counter?] = Array(repeating: nil, count: TaskOutcome.allCases.count)
    /// From acceptance (or the end of a delay) to the first dispatch.
    let dispatchLatency: CoreMetrics.Timer
    /// From acceptance to the result, for tasks that ran to one (succeeded or failed).
    let latency: CoreMetrics.Timer

    init(name: String, factory: any MetricsFactory) {
        self.name = name
        self.factory = factory
        dispatchLatency = CoreMetrics.Timer(label: TaskMetricNames.dispatchLatency, dimensions: [("name", name)], factory: factory)
        latency = CoreMetrics.Timer(label: TaskMetricNames.latency, dimensions: [("name", name)], factory: factory)
    }

    func count(_ outcome: TaskOutcome) {
        if let counter = counters[outcome.rawValue] { return counter.increment() }
        let counter = Counter(label: TaskMetricNames.tasks, dimensions: [("name", name), ("status", outcome.label)], factory: factory)
        counters[outcome.rawValue] = counter
        counter.increment()
    }
}

/// The metric names the broker's library records (docs/OBSERVABILITY.md). The backend's help
/// texts and buckets are keyed by them.
public enum TaskMetricNames {
    public static let tasks = "conveyor_tasks_total"
    public static let dispatchLatency = "conveyor_task_dispatch_latency_seconds"
    public static let latency = "conveyor_task_latency_seconds"
    public static let fsyncDuration = "conveyor_journal_fsync_duration_seconds"
    public static let recordsPerFsync = "conveyor_journal_records_per_fsync"
}

/// What became of a task, as `conveyor_tasks_total{status}` and the STATS totals count it.
enum TaskOutcome: Int, CaseIterable {
    case submitted, succeeded, failed, timedOut, cancelled, rejected, retried, requeued, deadLettered

    var label: String {
        switch self {
        case .submitted: "submitted"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .timedOut: "timed_out"
        case .cancelled: "cancelled"
        case .rejected: "rejected"
        case .retried: "retried"
        case .requeued: "requeued"
        case .deadLettered: "dead_lettered"
        }
    }
}
