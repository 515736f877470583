public import CoreMetrics
import Prometheus
import Synchronization

/// A duration histogram that costs the recording thread one binary search and two relaxed atomic
/// adds: the swift-metrics `Timer` behind `conveyor_task_dispatch_latency_seconds`,
/// `conveyor_task_latency_seconds`, `conveyor_handler_duration_seconds` and the journal's fsync
/// histogram (docs/OBSERVABILITY.md).
///
/// swift-prometheus's own histogram takes a lock and adds to every bucket at or above the value
/// (its buckets are stored cumulative); on the broker's hot path that was most of what metrics cost
/// W1 (docs/BENCHMARKS.md). Here each value lands in exactly one slot, and the cumulative counts
/// are summed when a scrape renders them, which happens once per scrape, not once per task.
final class BucketHistogram: TimerHandler, @unchecked Sendable {
    // @unchecked Sendable: the only mutable state is `slots`, `sum`, reached only through atomic
    // operations on memory this object allocates once and frees in deinit; everything else is `let`.

    let name: String
    /// `name="echo"` style, already escaped; empty without labels.
    let labels: String
    /// Upper bounds in nanoseconds, ascending. Slot `i` counts values in `(bounds[i-1], bounds[i]]`;
    /// the slot past the last bound counts the rest (`+Inf`).
    private let bounds: [Int64]
    private let renderedBounds: [String]
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private let sum = Atomic<Int64>(0)

    init(name: String, dimensions: [(String, String)], buckets: [Duration]) {
        self.name = name
        labels = dimensions.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        let sorted = buckets.sorted()
        bounds = sorted.map { Self.nanoseconds($0) }
        renderedBounds = sorted.map(\.bucketRepresentation)
        slots = .allocate(capacity: sorted.count + 1)
        for index in 0...sorted.count { (slots + index).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: bounds.count + 1)
        slots.deallocate()
    }

    func recordNanoseconds(_ duration: Int64) {
        let value = max(0, duration)
        var low = 0
        var high = bounds.count
        while low < high {
            let middle = (low + high) / 2
            if bounds[middle] < value { low = middle + 1 } else { high = middle }
        }
        slots[low].add(1, ordering: .relaxed)
        sum.add(value, ordering: .relaxed)
    }

    /// The series in the text format (0.0.4): cumulative buckets, `+Inf`, `_sum`, `_count`.
    func render(into text: inout String) {
        let separator = labels.isEmpty ? "" : ","
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        var cumulative = 0
        for index in 0..<bounds.count {
            cumulative += slots[index].load(ordering: .relaxed)
            text += "\(name)_bucket{\(labels)\(separator)le=\"\(renderedBounds[index])\"} \(cumulative)\n"
        }
        cumulative += slots[bounds.count].load(ordering: .relaxed)
        text += "\(name)_bucket{\(labels)\(separator)le=\"+Inf\"} \(cumulative)\n"
        text += "\(name)_sum\(braced) \(Duration.nanoseconds(sum.load(ordering: .relaxed)).bucketRepresentation)\n"
        text += "\(name)_count\(braced) \(cumulative)\n"
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    private static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// The swift-metrics factory of a ``MetricsRegistry``: timers are ``BucketHistogram``s, everything
/// else is swift-prometheus's. Asking twice for one label and dimensions gives one timer, as
/// swift-prometheus does for its own kinds.
struct ConveyorMetricsFactory: MetricsFactory {
    let prometheus: PrometheusMetricsFactory
    let timers: Timers
    /// Buckets by metric name; the rest get `defaultBuckets`.
    let buckets: [String: [Duration]]
    let defaultBuckets: [Duration]

    /// The timers made so far, by name, then by rendered labels.
    final class Timers: Sendable {
        let byName = Mutex<[String: [String: BucketHistogram]]>([:])

        func render() -> String {
            let families = byName.withLock { $0 }
            var text = ""
            for name in families.keys.sorted() {
                text += "# TYPE \(name) histogram\n"
                let series = families[name] ?? [:]
                for labels in series.keys.sorted() { series[labels]?.render(into: &text) }
            }
            return text
        }
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let made = BucketHistogram(name: label, dimensions: dimensions, buckets: buckets[label] ?? defaultBuckets)
        return timers.byName.withLock { families in
            if let existing = families[label]?[made.labels] { return existing }
            families[label, default: [:]][made.labels] = made
            return made
        }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        guard let histogram = handler as? BucketHistogram else { return prometheus.destroyTimer(handler) }
        timers.byName.withLock { families in
            if families[histogram.name]?[histogram.labels] === histogram { families[histogram.name]?[histogram.labels] = nil }
        }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(label: label, dimensions: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeMeter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
}
