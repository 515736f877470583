import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// Global limits and broker schedules against real processes (docs/SCHEDULES.md, `conveyor
/// limit`): the bounds are the issue's, timing asserted generously; precise figures are in
/// docs/BENCHMARKS.md.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LimitsScheduleTests {
    private func cli(_ cluster: Cluster, _ arguments: [String], lastLine: String? = nil) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
        let status = process.waitForExit(timeout: .seconds(60))
        if let lastLine {
            _ = process.waitForLine(containing: lastLine, timeout: .seconds(5))
        } else {
            _ = process.waitForLine(timeout: .milliseconds(300)) { _ in false }
        }
        return (status, process.output)
    }

    @Test("rate 50/s with burst 10: 200 tasks across 2 consumer processes take at least (200 - 10) / 50 s, and both processes ran some")
    func rateLimitAcrossProcesses() async throws {
        try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
            try await cluster.waitForConsumers(2)
            let (status, output) = try cli(cluster, ["limit", "echo", "--rate", "50/s", "--burst", "10"], lastLine: "--clear")
            #expect(status == 0, "\(output)")
            #expect(output.contains { $0.hasPrefix("set: echo: rate=50/s burst=10") }, "\(output)")
            let producer = try cluster.makeProducer()
            let started = ContinuousClock.now
            let handles = try await producer.submit(batch: (0..<200).map { TaskSubmission("echo", json: RawJSON(#"{"n":\#($0)}"#)) })
            var pids: Set<Int> = []
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok, "\(result)")
                if let pid = result.info?.pid { pids.insert(pid) }
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(3.8), "200 tasks at 50/s after a burst of 10 took \(elapsed)")
            #expect(elapsed < .seconds(38), "and not ten times longer: \(elapsed)")
            #expect(pids.count == 2, "both consumer processes ran tasks: \(pids)")
            let figures = try await cluster.stats().limits?.first
            #expect(figures?.name == "echo" && (figures?.throttled ?? 0) >= 1, "\(String(describing: figures))")
        }
    }

    @Test("concurrency 2 across 2 processes x 4 threads: the tasks' own start and end times never overlap more than 2; other names run beside them")
    func concurrencyAcrossProcesses() async throws {
        try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
            try await cluster.waitForConsumers(2)
            let producer = try cluster.makeProducer()
            let outcome = try await producer.setLimit(name: "sleep", NameLimit(concurrency: 2))
            #expect(outcome.changed && outcome.figures?.limit.concurrency == 2)
            let started = ContinuousClock.now
            let sleeps = try await producer.submit(batch: (0..<12).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":250,"times":true}"#)) })
            // A name without a limit is not held up behind the limited one.
            let echo = try await producer.submit("echo", json: #"{"beside":true}"#)
            #expect(await echo.result().status == .ok)
            #expect(ContinuousClock.now - started < .seconds(2.5), "echo ran while sleeps waited for a slot")
            struct Span: Decodable {
                let started_ms: Double
                let ended_ms: Double
            }
            var spans: [Span] = []
            var pids: Set<Int> = []
            for handle in sleeps {
                let result = await handle.result()
                #expect(result.status == .ok, "\(result)")
                if let span = try? JSONDecoder().decode(Span.self, from: Data(result.body.bytes)) { spans.append(span) }
                if let pid = result.info?.pid { pids.insert(pid) }
            }
            #expect(spans.count == 12)
            // The most running at once: walk the starts and ends in time order.
            var events: [(at: Double, change: Int)] = []
            for span in spans { events += [(span.started_ms, 1), (span.ended_ms, -1)] }
            // Ends before starts at the same instant: a slot freed and taken is not an overlap.
            events.sort { (a: (at: Double, change: Int), b: (at: Double, change: Int)) -> Bool in
                a.at != b.at ? a.at < b.at : a.change < b.change
            }
            var running = 0, most = 0
            for (_, change) in events {
                running += change
                most = max(most, running)
            }
            #expect(most <= 2, "at most 2 ran at once; \(most) did")
            #expect(most == 2, "and the limit is used: 2 at once")
            #expect(pids.count == 2, "across both processes: \(pids)")
            #expect(ContinuousClock.now - started >= .seconds(1.5), "12 x 250 ms two at a time take at least 1.5 s")
        }
    }

    @Test("schedule --every 1 with a broker kill -9 and restart in the middle: the tick ids are consecutive, each ran once, and the schedule survives")
    func everySecondAcrossKill() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            var (status, output) = try cli(cluster, ["schedule", "add", "tick", "echo", #"{"beat":1}"#, "--every", "1", "--missed", "all"],
                                           lastLine: "added schedule")
            #expect(status == 0, "\(output)")
            #expect(output.contains { $0.hasPrefix("added schedule 'tick': echo {\"beat\":1} every 1 s") }, "\(output)")
            try await Task.sleep(for: .seconds(3.5))
            cluster.broker?.send(SIGKILL)
            _ = cluster.broker?.waitForExit(timeout: .seconds(10))
            try await Task.sleep(for: .seconds(2))
            try cluster.restartBroker()
            try await cluster.waitForConsumers(1)
            try await Task.sleep(for: .seconds(3))
            (status, output) = try cli(cluster, ["schedule", "list"])
            #expect(output.contains { $0.hasPrefix("tick: echo {\"beat\":1} every 1 s; next ") }, "the schedule survived: \(output)")
            (status, output) = try cli(cluster, ["schedule", "remove", "tick"], lastLine: "removed schedule")
            #expect(status == 0, "\(output)")

            let producer = try cluster.makeProducer()
            var query = TaskQuery(name: "echo", limit: 1000)
            var ids: [String] = []
            repeat {
                let page = try await producer.tasks(query)
                ids += page.tasks.map(\.id).filter { $0.hasPrefix("sched:tick:") }
                query.cursor = page.nextCursor
            } while query.cursor != nil
            let seconds = ids.compactMap { Int64($0.split(separator: ":").last!) }.sorted()
            #expect(seconds.count >= 7, "about 8 ticks in 8.5 s: \(seconds)")
            #expect(Set(seconds).count == seconds.count, "no tick twice")
            if let first = seconds.first {
                #expect(seconds == Array(first..<(first + Int64(seconds.count))), "consecutive, the missed ones fired after the restart: \(seconds)")
            }
            for id in ids {
                let report = try await producer.status(id: id)
                #expect(report.result?.status == .ok, "\(id): \(report)")
                #expect(report.result?.info?.attempts == 1, "\(id) ran once")
            }
            #expect(try await producer.schedules().isEmpty)
        }
    }

    @Test("schedule mistakes are answered at once with the cause: a bad cron field, an unknown time zone, both --every and --cron, an unknown id")
    func scheduleMistakes() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            var (status, output) = try cli(cluster, ["schedule", "add", "bad", "echo", "--cron", "61 * * * *"])
            #expect(status != 0 && output.contains { $0.contains("minute field: 61 is out of range 0-59") }, "\(output)")
            (status, output) = try cli(cluster, ["schedule", "add", "tz", "echo", "--cron", "0 3 * * *", "--timezone", "Mars/Base"])
            #expect(status != 0 && output.contains { $0.contains("unknown time zone 'Mars/Base'") }, "\(output)")
            (status, output) = try cli(cluster, ["schedule", "add", "both", "echo", "--cron", "0 3 * * *", "--every", "5"])
            #expect(status != 0 && output.contains { $0.contains("exactly one of --every SECONDS and --cron") }, "\(output)")
            (status, output) = try cli(cluster, ["schedule", "remove", "nope"])
            #expect(status != 0 && output.contains { $0.contains("no schedule 'nope'") }, "\(output)")
            (status, output) = try cli(cluster, ["schedule", "add", "berlin", "report", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin"], lastLine: "added schedule")
            #expect(status == 0 && output.contains { $0.contains(#"cron "0 3 * * *" (Europe/Berlin)"#) }, "\(output)")
            let listed = try await cluster.makeProducer().schedules()
            #expect(listed.map(\.spec.id) == ["berlin"])
            // 03:00 in Berlin is 01:00 or 02:00 UTC.
            if let next = listed.first?.spec.nextTick {
                let hour = (next % 86_400) / 3600
                #expect(hour == 1 || hour == 2, "next tick \(next)")
            }
        }
    }
}
