public import CoreMetrics
public import Prometheus
import Synchronization

/// One process's metrics (docs/OBSERVABILITY.md): a swift-prometheus registry, the swift-metrics
/// factory the libraries record through (with buckets chosen for task latencies and fsyncs), and
/// the means to copy figures from a statistics snapshot into gauges and counters at scrape time.
public final class MetricsRegistry: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// What the libraries record through: timers are ``BucketHistogram``s (lock-free, rendered by
    /// ``text()``), everything else swift-prometheus's.
    public let factory: any MetricsFactory
    private let timers = ConveyorMetricsFactory.Timers()
    /// The last total copied into each counter mirrored from a snapshot, by name and labels.
    private let mirroredTotals = Mutex<[String: Int64]>([:])
    /// The label values each labelled gauge family was last given, so that a vanished one reads 0.
    private let gaugeLabels = Mutex<[String: Set<String>]>([:])

    /// Task latencies: 100 µs to 5 min.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(300),
    ]
    /// fsync: 20 µs to 1 s.
    public static let fsyncBuckets: [Duration] = [
        .microseconds(20), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    public init() {
        var prometheus = PrometheusMetricsFactory(registry: registry)
        prometheus.valueHistogramBuckets = ["conveyor_journal_records_per_fsync": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]]
        factory = ConveyorMetricsFactory(
            prometheus: prometheus, timers: timers,
            buckets: ["conveyor_journal_fsync_duration_seconds": Self.fsyncBuckets], defaultBuckets: Self.latencyBuckets)
    }

    /// Sets the gauge `name{labels}`.
    public func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(value)
    }

    /// Sets one gauge per value of `label` in `values`; one that was set before and is missing now
    /// reads 0 (a task name with nothing queued any more).
    public func gauges(_ name: String, _ help: String, label: String, _ values: [String: Double]) {
        let vanished = gaugeLabels.withLock { seen -> Set<String> in
            let before = seen[name] ?? []
            seen[name] = before.union(values.keys)
            return before.subtracting(values.keys)
        }
        for (value, number) in values { gauge(name, help, [(label, value)], number) }
        for value in vanished { gauge(name, help, [(label, value)], 0) }
    }

    /// Brings the counter `name{labels}` up to `total`, a running total taken from a snapshot.
    public func counter(_ name: String, _ help: String, _ labels: [(String, String)] = [], total: Int) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = mirroredTotals.withLock { last -> Int64 in
            let previous = last[key] ?? 0
            last[key] = max(previous, Int64(total))
            return Int64(total) - previous
        }
        let counter = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
        if delta > 0 { counter.increment(by: delta) }
    }

    /// The exposition (text format 0.0.4).
    public func text() -> String { registry.emitToString() + timers.render() }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
