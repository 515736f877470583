import ConveyorProcess
import ConveyorProducer
import ConveyorTesting
import Foundation
import Testing

/// `--metrics-listen` of the broker and of consumer processes: /metrics scraped during and after a
/// batch and parsed by the Prometheus client's own parser, its counters agreeing with `STATS`;
/// /healthz and /readyz, also while a broker recovers its journal; a supervisor's restarts.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MetricsTests {
    @Test("during and after a batch: every documented series present, counters equal to stats, histogram counts equal to the tasks; the consumer's own series; probes")
    func scrapeDuringAndAfterABatch() async throws {
        let options = Cluster.Options(consumers: 1, threads: 2, brokerArguments: ["--metrics-listen", "127.0.0.1:0"],
                                      consumerArguments: ["--metrics-listen", "127.0.0.1:0"])
        try await withCluster(options) { cluster in
            let brokerURL = try Scrape.announced(try #require(cluster.broker))
            let consumerURL = try Scrape.announced(try #require(cluster.consumers.first))
            let producer = try cluster.makeProducer()
            // 16 naps of 300 ms on 2 threads: 2.4 s of work, scraped while it runs.
            let naps = try await producer.submit(batch: (0..<16).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":300}"#)) })
            try await Task.sleep(for: .milliseconds(1_300))
            let during = try Scrape.get(brokerURL)
            #expect(during["conveyor_tasks_running{name=sleep}"] == 2, "\(during.filter { $0.key.contains("sleep") })")
            let waiting = (during["conveyor_tasks_queued{name=sleep}"] ?? 0) + (during["conveyor_tasks_reserved{name=sleep}"] ?? 0)
            #expect(waiting >= 6, "most naps still wait: \(waiting)")
            #expect((during["conveyor_oldest_queued_task_age_seconds{name=sleep}"] ?? 0) > 0 || during["conveyor_tasks_queued{name=sleep}"] == 0)
            // Between one nap's end and the next one's start a thread is briefly idle: look a few times.
            var busy = try Scrape.get(consumerURL)
            for _ in 0..<20 where busy["conveyor_consumer_busy_threads{}"] != 2 {
                try await Task.sleep(for: .milliseconds(25))
                busy = try Scrape.get(consumerURL)
            }
            #expect(busy["conveyor_consumer_busy_threads{}"] == 2 && busy["conveyor_consumer_registered{}"] == 1, "\(busy)")
            for handle in naps { #expect(await handle.result().status == .ok) }

            let echoes = try await producer.submit(batch: (0..<20).map { TaskSubmission("echo", json: RawJSON("[\($0)]")) })
            for handle in echoes { #expect(await handle.result().status == .ok) }
            #expect(await (try producer.submit("fail", json: #"{"message":"no"}"#)).result().status == .error)
            let flaky = try await producer.submit("flaky", json: #"{"failures":1}"#, options: TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 10))
            #expect(await flaky.result().status == .ok)
            try await Task.sleep(for: .milliseconds(1_500))  // the broker's snapshot is at most a second old

            let after = try Scrape.get(brokerURL)
            let stats = try await cluster.stats()
            let totals = stats.totals
            for (status, total) in [("submitted", totals.submitted), ("succeeded", totals.succeeded), ("failed", totals.failed),
                                    ("retried", totals.retried), ("cancelled", totals.cancelled), ("timed_out", totals.timedOut),
                                    ("requeued", totals.requeued), ("rejected", totals.rejected)] {
                let summed = after.filter { $0.key.hasPrefix("conveyor_tasks_total{") && $0.key.contains("status=\(status)}") }.values.reduce(0, +)
                #expect(summed == Double(total), "\(status): /metrics \(summed), stats \(total)")
            }
            #expect(after["conveyor_tasks_total{name=echo,status=succeeded}"] == 20)
            #expect(after["conveyor_tasks_total{name=flaky,status=retried}"] == 1)
            #expect(after["conveyor_tasks_total{name=fail,status=failed}"] == 1)
            #expect(after["conveyor_task_latency_seconds_count{name=echo}"] == 20)
            #expect(after["conveyor_task_dispatch_latency_seconds_count{name=sleep}"] == 16)
            // The last nap waited for seven before it on its thread: at least 2.1 s from acceptance.
            #expect(after["conveyor_task_latency_seconds_bucket{le=1.0,name=sleep}"].map { $0 < 16 } == true)
            #expect(after["conveyor_tasks_running{name=sleep}"] == 0 && after["conveyor_tasks_queued{name=sleep}"] == 0)
            #expect(after["conveyor_consumers{}"] == 1 && after["conveyor_consumer_threads{}"] == 2)
            #expect((after["conveyor_journal_fsync_duration_seconds_count{}"] ?? 0) > 0)
            #expect((after["conveyor_journal_records_per_fsync_sum{}"] ?? 0) == after["conveyor_journal_records_total{}"])

            let consumer = try Scrape.get(consumerURL)
            #expect(consumer["conveyor_handler_duration_seconds_count{name=sleep}"] == 16)
            #expect((consumer["conveyor_handler_duration_seconds_sum{name=sleep}"] ?? 0) >= 16 * 0.3)
            #expect(consumer["conveyor_handler_duration_seconds_count{name=flaky}"] == 2, "two attempts")
            #expect(consumer["conveyor_consumer_busy_threads{}"] == 0 && consumer["conveyor_consumer_process_threads{}"] == 2)

            for series in try Scrape.documented("The broker's series") {
                let present = Scrape.has(after, series)
                #expect(present, "\(series) is documented but missing from the broker's /metrics")
            }
            for series in try Scrape.documented("A consumer process's series") {
                let present = Scrape.has(consumer, series)
                #expect(present, "\(series) is documented but missing from the consumer's /metrics")
            }

            let base = String(brokerURL.dropLast("/metrics".count))
            #expect(try Scrape.status(base + "/healthz") == 200)
            #expect(try Scrape.status(base + "/readyz") == 200)
            #expect(try Scrape.status(base + "/nothing") == 404)
            #expect(try Scrape.status(String(consumerURL.dropLast("/metrics".count)) + "/readyz") == 200)
        }
    }

    @Test("/readyz is 503 while a journal of 100,000 tasks is recovered and 200 once it is; /healthz is 200 throughout")
    func readyOnlyOnceRecovered() async throws {
        let port = try Scrape.freePort()
        try await withCluster(.init(consumers: 0, brokerArguments: ["--metrics-listen", "127.0.0.1:\(port)"])) { cluster in
            // Nothing serves `parked`: the producer must hold every unanswered task at once.
            let producer = try cluster.makeProducer { $0.window = 100_000 }
            for chunk in 0..<10 {
                _ = try await producer.submit(batch: (0..<10_000).map { TaskSubmission("parked", json: RawJSON("[\(chunk),\($0)]")) })
            }
            await cluster.shutDownProducers()
            try #require(cluster.broker?.stop() == 0)
            // Polls from before the broker starts until it is ready: connection refused, then 503s
            // while it recovers, then 200.
            let poller = try Scrape.pollUntilReady("http://127.0.0.1:\(port)")
            try cluster.restartBroker()
            #expect(poller.waitForExit(timeout: .seconds(60)) == 0, "\(poller.output)")
            let seen = poller.output.filter { $0.hasPrefix("readyz ") }
            #expect(seen.last == "readyz 200 healthz 200", "\(seen)")
            #expect(seen.contains { $0.hasPrefix("readyz 503") }, "never saw the broker recovering: \(seen)")
            #expect(!seen.contains { $0.hasSuffix("healthz 503") }, "a recovering broker is alive: \(seen)")
            let recovered = try #require(cluster.broker?.waitForLine(containing: "journal recovered", timeout: .seconds(5)))
            #expect(recovered.contains("tasks.queued=100000"), "\(recovered)")
        }
    }

    @Test("a supervisor serves its children's restarts; each child serves its own series")
    func supervisorRestarts() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let supervisor = try cluster.startConsumer(threads: 1, processes: 2, arguments: ["--metrics-listen", "127.0.0.1:0"])
            let url = try Scrape.announced(supervisor)
            try await cluster.waitForConsumers(2)
            let before = try Scrape.get(url)
            #expect(before["conveyor_consumer_processes{}"] == 2 && before["conveyor_consumer_restarts_total{}"] == 0, "\(before)")
            let children = supervisor.output.filter { $0.hasPrefix("metrics http://") && !$0.hasSuffix(url) }
            #expect(children.count == 2, "\(supervisor.output)")

            let victim = try #require(try await cluster.stats().consumers.first?.pid)
            kill(pid_t(victim), SIGKILL)
            let deadline = ContinuousClock.now + .seconds(30)
            var restarted: [String: Double] = [:]
            while ContinuousClock.now < deadline {
                restarted = try Scrape.get(url)
                if restarted["conveyor_consumer_restarts_total{}"] == 1 && restarted["conveyor_consumer_processes_running{}"] == 2 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(restarted["conveyor_consumer_restarts_total{}"] == 1 && restarted["conveyor_consumer_processes_running{}"] == 2,
                    "\(restarted)")
            for series in try Scrape.documented("A consumer supervisor's series") {
                let present = Scrape.has(restarted, series)
                #expect(present, "\(series) is documented but missing from the supervisor's /metrics")
            }
        }
    }
}
