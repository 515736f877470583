import ConveyorMetrics
import CoreMetrics
import Foundation
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// `conveyor bench timers`: what one swift-metrics `Timer.recordNanoseconds` costs the recording
/// thread, in CPU nanoseconds, with swift-prometheus's own histogram (a lock, and an add to every
/// bucket at or above the value) and with the registry's ``BucketHistogram`` (one binary search,
/// two relaxed atomic adds), on one thread and on four threads sharing one series. Thread CPU
/// time, not wall time, so that another process on the machine moves the figure little.
struct TimerBenchmark: Codable {
    struct Row: Codable {
        let timer: String
        let threads: Int
        let nanosecondsPerRecord: Double
    }

    let records: Int
    let rows: [Row]

    static func run(records: Int) async -> TimerBenchmark {
        let prometheus: any MetricsFactory = {
            var factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
            factory.defaultDurationHistogramBuckets = MetricsRegistry.latencyBuckets
            return factory
        }()
        var rows: [Row] = []
        for threads in [1, 4] {
            for (label, factory) in [("swift-prometheus", prometheus), ("conveyor", MetricsRegistry().factory)] {
                let timer = CoreMetrics.Timer(label: "bench_seconds", dimensions: [("name", "echo")], factory: factory)
                let perThread = records / threads
                let nanoseconds = await withTaskGroup(of: Double.self) { group in
                    for _ in 0..<threads {
                        group.addTask {
                            let start = threadCPUNanoseconds()
                            // Latencies from 50 µs to ~1 s, spread over the buckets.
                            for index in 0..<perThread { timer.recordNanoseconds(Int64(50_000 + (index % 1_000) * 997_000)) }
                            return Double(threadCPUNanoseconds() - start)
                        }
                    }
                    return await group.reduce(0, +)
                }
                rows.append(Row(timer: label, threads: threads, nanosecondsPerRecord: nanoseconds / Double(perThread * threads)))
            }
        }
        return TimerBenchmark(records: records, rows: rows)
    }

    var table: String {
        rows.map { String(format: "timers: %-16@ %d thread(s): %6.1f ns per record", $0.timer, $0.threads, $0.nanosecondsPerRecord) }
            .joined(separator: "\n")
    }
}

private func threadCPUNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
