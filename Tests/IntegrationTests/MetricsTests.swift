import ConveyorProcess
import ConveyorProducer
import ConveyorTesting
import Foundation
import Testing

/// `broker --metrics-listen`: /metrics scraped and parsed by the Prometheus client's own parser,
/// its counters agreeing with `STATS`; /healthz and /readyz.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MetricsTests {
    /// Fetches `url` and parses it with prometheus_client; returns "name{labels}" → value, or the
    /// HTTP status for a probe ("status" → code).
    static func scrape(_ url: String, parse: Bool) throws -> [String: Double] {
        let script = """
            import json, sys, urllib.request, urllib.error
            try:
                response = urllib.request.urlopen(sys.argv[1], timeout=5)
                status, body = response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                status, body = error.code, ""
            out = {"status": status}
            if sys.argv[2] == "parse" and status == 200:
                from prometheus_client.parser import text_string_to_metric_families
                for family in text_string_to_metric_families(body):
                    for sample in family.samples:
                        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                        out[sample.name + "{" + labels + "}"] = sample.value
            print(json.dumps(out))
            """
        let process = try ManagedProcess(name: "scrape", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                         arguments: ["python3", "-c", script, url, parse ? "parse" : "status"])
        #expect(process.waitForExit(timeout: .seconds(20)) == 0, "\(process.output)")
        let line = try #require(process.waitForLine(timeout: .seconds(2)) { $0.hasPrefix("{") })
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
    }

    @Test("/metrics after a batch: every documented family present, counters equal to stats; /healthz and /readyz 200; other paths 404")
    func scrapeAfterABatch() async throws {
        try await withCluster(.init(consumers: 1, threads: 2, brokerArguments: ["--metrics-listen", "127.0.0.1:0"])) { cluster in
            let broker = try #require(cluster.broker)
            let announced = try #require(broker.waitForLine(containing: "metrics http://", timeout: .seconds(10)))
            let url = String(announced.dropFirst("metrics ".count))
            let producer = try cluster.makeProducer()
            let handles = try await producer.submit(batch: (0..<20).map { TaskSubmission("echo", json: RawJSON("[\($0)]")) })
            for handle in handles { #expect(await handle.result().status == .ok) }
            #expect(await (try producer.submit("fail", json: #"{"message":"no"}"#)).result().status == .error)
            // The broker publishes its snapshot once a second.
            try await Task.sleep(for: .milliseconds(1_500))
            let metrics = try Self.scrape(url, parse: true)
            let stats = try await cluster.stats()
            #expect(metrics["status"] == 200)
            #expect(metrics["conveyor_tasks_total{status=succeeded}"] == Double(stats.totals.succeeded))
            #expect(metrics["conveyor_tasks_total{status=failed}"] == Double(stats.totals.failed))
            #expect(metrics["conveyor_tasks_total{status=submitted}"] == 21)
            #expect(metrics["conveyor_consumers{}"] == 1 && metrics["conveyor_consumer_threads{}"] == 2)
            for family in ["conveyor_tasks_queued_all{}", "conveyor_tasks_running{}", "conveyor_tasks_reserved{}",
                           "conveyor_tasks_delayed{}", "conveyor_results_kept{}", "conveyor_dead_letters{}",
                           "conveyor_broker_uptime_seconds{}", "conveyor_journal_size_bytes{}", "conveyor_journal_records_total{}",
                           "conveyor_journal_fsyncs_total{}", "conveyor_producers{}"] {
                #expect(metrics[family] != nil, "\(family) missing from /metrics")
            }
            let base = String(url.dropLast("/metrics".count))
            #expect(try Self.scrape(base + "/healthz", parse: false)["status"] == 200)
            #expect(try Self.scrape(base + "/readyz", parse: false)["status"] == 200)
            #expect(try Self.scrape(base + "/nothing", parse: false)["status"] == 404)
        }
    }
}
