import ConveyorMetrics
import CoreMetrics
import Foundation
import Testing

/// The registry's lock-free timers render as Prometheus histograms: cumulative buckets, `+Inf`,
/// `_sum` and `_count`, each value counted once, from any number of threads.
@Suite struct BucketHistogramTests {
    /// `name_bucket{labels,le="x"}` and friends, from an exposition, by the text left of the value.
    private func series(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    @Test("each value lands in the first bucket at or above it; buckets render cumulative")
    func buckets() {
        let metrics = MetricsRegistry()
        let timer = CoreMetrics.Timer(label: "conveyor_task_latency_seconds", dimensions: [("name", "echo")], factory: metrics.factory)
        for nanoseconds: Int64 in [50_000, 100_000, 150_000, 400_000_000_000, -5] { timer.recordNanoseconds(nanoseconds) }
        let text = metrics.text()
        #expect(text.contains("# TYPE conveyor_task_latency_seconds histogram"))
        let found = series(text)
        #expect(found[#"conveyor_task_latency_seconds_bucket{name="echo",le="0.0001"}"#] == 3, "50 µs, 100 µs and the negative one")
        #expect(found[#"conveyor_task_latency_seconds_bucket{name="echo",le="0.00025"}"#] == 4)
        #expect(found[#"conveyor_task_latency_seconds_bucket{name="echo",le="300.0"}"#] == 4)
        #expect(found[#"conveyor_task_latency_seconds_bucket{name="echo",le="+Inf"}"#] == 5)
        #expect(found[#"conveyor_task_latency_seconds_count{name="echo"}"#] == 5)
        #expect(found[#"conveyor_task_latency_seconds_sum{name="echo"}"#].map { abs($0 - 400.0003) < 1e-9 } == true)
    }

    @Test("one label and dimensions is one series; label values are escaped")
    func sameSeries() {
        let metrics = MetricsRegistry()
        let first = CoreMetrics.Timer(label: "conveyor_handler_duration_seconds", dimensions: [("name", #"a"b"#)], factory: metrics.factory)
        let second = CoreMetrics.Timer(label: "conveyor_handler_duration_seconds", dimensions: [("name", #"a"b"#)], factory: metrics.factory)
        first.recordNanoseconds(1_000)
        second.recordNanoseconds(2_000)
        #expect(series(metrics.text())[#"conveyor_handler_duration_seconds_count{name="a\"b"}"#] == 2)
    }

    @Test("records from several threads at once are all counted")
    func threads() async {
        let metrics = MetricsRegistry()
        let timer = CoreMetrics.Timer(label: "conveyor_journal_fsync_duration_seconds", factory: metrics.factory)
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for index in 0..<50_000 { timer.recordNanoseconds(Int64(thread * 1_000 + index % 1_000)) }
                }
            }
        }
        let found = series(metrics.text())
        #expect(found["conveyor_journal_fsync_duration_seconds_count"] == 200_000)
        #expect(found[#"conveyor_journal_fsync_duration_seconds_bucket{le="+Inf"}"#] == 200_000)
        #expect(found[#"conveyor_journal_fsync_duration_seconds_bucket{le="0.00002"}"#] == 200_000, "all under 20 µs")
    }
}
