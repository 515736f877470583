import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// Delayed tasks (`--delay`, `--at`) and unique tasks (`--unique-key`, `--unique-ttl`) with real
/// processes and the CLI: scheduled at once, never run before their time (the consumer's
/// execution log, read every 50 ms against the due time the broker reports) and soon after, kept
/// across a `kill -9` of the broker, cancelled while scheduled; one task per key within the TTL.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DelayedTasksCLITests {
    /// Runs `conveyor` with `arguments` against the cluster's broker (none: `broker` false).
    private func cli(_ cluster: Cluster, _ arguments: [String], broker: Bool = true) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable,
                                         arguments: arguments + (broker ? ["--broker", cluster.frontend] : []))
        let status = process.waitForExit(timeout: .seconds(60))
        _ = process.waitForLine(timeout: .milliseconds(300)) { _ in false }
        return (status, process.output)
    }

    /// `conveyor submit … --no-wait`: the id it printed.
    private func submit(_ cluster: Cluster, _ arguments: [String]) throws -> String? {
        let (status, output) = try cli(cluster, ["submit"] + arguments + ["--no-wait"])
        #expect(status == 0, "\(output)")
        return output.last { !$0.isEmpty && !$0.hasPrefix("unique key") && !$0.contains(" ") }
    }

    /// `conveyor status ID` as JSON.
    private func status(_ cluster: Cluster, _ id: String) throws -> [String: Any] {
        let (_, output) = try cli(cluster, ["status", id])
        guard let line = output.last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return [:] }
        return object
    }

    static var nowMilliseconds: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Reads the execution log every 50 ms until each of `due` (id → due time, ms since the
    /// epoch) has run or `deadline` passes; fails for an id seen before its due time. Returns
    /// when each was first seen (ms since the epoch).
    private func watchRuns(_ log: String, due: [String: Int64], until deadline: Int64) async throws -> [String: Int64] {
        var seen: [String: Int64] = [:]
        while Self.nowMilliseconds < deadline, seen.count < due.count {
            let before = Self.nowMilliseconds
            let executions = Durability.executions(log)
            for (id, at) in due where seen[id] == nil && executions[id] != nil {
                #expect(before >= at, "\(id) ran before its due time: seen by \(before), due \(at)")
                seen[id] = Self.nowMilliseconds
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return seen
    }

    @Test("submit --delay 2: scheduled at once with its due time, listed as scheduled, never run before it, run within seconds after")
    func delayedTaskRunsOnTime() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-delay-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--execution-log", log])) { cluster in
            let submitted = Self.nowMilliseconds
            let id = try #require(try submit(cluster, ["echo", #"{"late":true}"#, "--delay", "2"]))
            let report = try status(cluster, id)
            #expect(report["state"] as? String == "scheduled", "\(report)")
            let due = try #require(report["due_at_ms"] as? Int64 ?? (report["due_at_ms"] as? NSNumber)?.int64Value, "\(report)")
            #expect(due >= submitted + 2_000 && due <= Self.nowMilliseconds + 2_000, "due \(due), submitted at \(submitted)")
            #expect((report["due_at"] as? String)?.hasSuffix("Z") == true, "\(report)")
            let (_, listing) = try cli(cluster, ["tasks", "--state", "scheduled", "--json"])
            #expect(listing.contains { $0.contains(#""id":"\#(id)""#) && $0.contains(#""due_at":\#(due)"#) }, "\(listing)")
            let seen = try await watchRuns(log, due: [id: due], until: due + 6_000)
            let ran = try #require(seen[id], "not run within 6 s of its due time")
            print("delayed task: due \(due), seen run \(ran - due) ms after (execution log read every 50 ms)")
            #expect(ran - due < 3_000)
            let done = try status(cluster, id)
            #expect(done["state"] as? String == "done" && done["status"] as? String == "ok", "\(done)")
        }
    }

    @Test("delayed tasks (--delay 10-12, --at) survive kill -9 of the broker: after a restart on the same data dir each runs once, none before its time")
    func delayedTasksSurviveKill() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-delay-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        try await withCluster(.init(consumers: 0)) { cluster in
            let formatter = ISO8601DateFormatter()
            let at = formatter.string(from: Date().addingTimeInterval(12))
            var ids: [String] = []
            for n in 0..<3 { ids += [try #require(try submit(cluster, ["echo", #"{"n":\#(n)}"#, "--delay", "\(10 + n)"]))] }
            ids += [try #require(try submit(cluster, ["echo", #"{"at":true}"#, "--at", at]))]
            var due: [String: Int64] = [:]
            for id in ids {
                let report = try status(cluster, id)
                #expect(report["state"] as? String == "scheduled", "\(report)")
                due[id] = report["due_at_ms"] as? Int64 ?? (report["due_at_ms"] as? NSNumber)?.int64Value
            }
            #expect(try await cluster.stats().scheduled == 4)
            Durability.killBroker(cluster)
            try cluster.restartBroker()
            #expect(try await cluster.stats().scheduled == 4, "still scheduled after the restart")
            try cluster.startConsumer(threads: 2, arguments: ["--execution-log", log])
            let seen = try await watchRuns(log, due: due.compactMapValues { $0 }, until: (due.values.compactMap { $0 }.max() ?? 0) + 8_000)
            #expect(seen.count == 4, "ran: \(seen.keys.sorted()) of \(ids)")
            try await Task.sleep(for: .milliseconds(500))
            for id in ids { #expect(Durability.executions(log)[id] == 1, "\(id) ran \(Durability.executions(log)[id] ?? 0) times") }
        }
    }

    @Test("cancel of a scheduled task: cancelled at once, and it never runs; --at without a zone and --delay with --at are refused")
    func cancelScheduledAndRefusals() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let id = try #require(try submit(cluster, ["echo", "{}", "--delay", "30"]))
            var (status, output) = try cli(cluster, ["cancel", id])
            #expect(status == 0 && output.contains("cancelled"), "\(output)")
            let report = try self.status(cluster, id)
            #expect(report["state"] as? String == "done" && report["status"] as? String == "cancelled", "\(report)")
            (status, output) = try cli(cluster, ["submit", "echo", "{}", "--at", "2026-12-24T18:00:00"])
            #expect(status == 64, "\(output)")
            #expect(output.contains { $0.contains("has no time zone") && $0.contains("2026-12-24T18:00:00Z") }, "\(output)")
            (status, output) = try cli(cluster, ["submit", "echo", "{}", "--at", "2026-12-24T18:00:00Z", "--delay", "5"])
            #expect(status == 64 && output.contains { $0.contains("give one of them") }, "\(output)")
            (status, output) = try cli(cluster, ["submit", "echo", "{}", "--delay", "40000000"])
            #expect(status == 64 && output.contains { $0.contains("--delay must be from 0 to") }, "\(output)")
        }
    }

    @Test("--unique-key twice within the TTL: one task, the same id, one execution; after the TTL a new task")
    func uniqueKeyWithinAndAfterTheTTL() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-unique-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        try await withCluster(.init(consumers: 1, threads: 2, consumerArguments: ["--execution-log", log])) { cluster in
            let unique = ["--unique-key", "report-2026-12-24", "--unique-ttl", "3"]
            let first = try #require(try submit(cluster, ["echo", #"{"run":1}"#] + unique))
            // Waiting for the result: the same task's, though these args differ.
            let (status, output) = try cli(cluster, ["submit", "echo", #"{"run":2}"#] + unique)
            #expect(status == 0, "\(output)")
            #expect(output.contains(#"{"run":1}"#), "the held task's result: \(output)")
            #expect(output.contains { $0.contains("is held by task \(first)") }, "\(output)")
            let second = try #require(try submit(cluster, ["echo", #"{"run":3}"#] + unique))
            #expect(second == first, "the same id within the TTL")
            try await Task.sleep(for: .milliseconds(300))
            #expect(Durability.executions(log).values.reduce(0, +) == 1, "one execution: \(Durability.executions(log))")
            try await Task.sleep(for: .milliseconds(3_500))
            let third = try #require(try submit(cluster, ["echo", #"{"run":4}"#] + unique))
            #expect(third != first, "after the TTL, a new task")
            let producer = try cluster.makeProducer()
            var report = try await producer.status(id: third)
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while report.state != .done, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                report = try await producer.status(id: third)
            }
            #expect(report.result?.body.text == #"{"run":4}"#)
            #expect(Durability.executions(log).values.reduce(0, +) == 2)
        }
    }
}
