import ConveyorProtocol
import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// The `conveyor` command line, run as a user would, against a real cluster.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CLITests {
    /// Runs `conveyor` with `arguments`; returns its exit status (`nil`: still running after
    /// `timeout`) and its output, both streams. `lastLine`: text of the line it prints last, waited
    /// for so that no line is still in the pipe.
    private func run(_ cluster: Cluster, _ arguments: [String], timeout: Duration = .seconds(60),
                     lastLine: String? = nil) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments)
        let status = process.waitForExit(timeout: timeout)
        // Let the reader deliver the last lines.
        if let lastLine {
            _ = process.waitForLine(containing: lastLine, timeout: .seconds(5))
        } else {
            _ = process.waitForLine(timeout: .milliseconds(300)) { _ in false }
        }
        return (status, process.output)
    }

    /// Writes `lines` as an NDJSON file for `--input`; the caller removes it.
    private func inputFile(_ lines: [String], name: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-\(name)-\(getpid()).ndjson")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The output lines that are JSON objects, decoded.
    private func jsonLines(_ output: [String]) -> [[String: Any]] {
        output.compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }

    @Test("submit --input runs one task per line and prints one JSON line per task; a bad line gets an error line")
    func batchMode() async throws {
        try await withCluster(.init(consumers: 2, threads: 2)) { cluster in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-batch-\(getpid()).ndjson")
            var lines = (0..<200).map { #"{"n":\#($0)}"# }
            lines[57] = "{this is not json"
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }

            let (status, output) = try run(cluster, ["submit", "echo", "--input", file.path, "--broker", cluster.frontend])
            #expect(status == 1, "one line failed, so the exit status is non-zero")
            let results = output.compactMap { line -> [String: Any]? in
                guard line.hasPrefix("{") else { return nil }
                return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            }
            #expect(results.count == 200)
            let byIndex = Dictionary(uniqueKeysWithValues: results.map { ($0["index"] as! Int, $0) })
            #expect(byIndex.count == 200)
            #expect(byIndex[57]?["status"] as? String == "error")
            #expect((byIndex[57]?["error"] as? String)?.contains("line 58") == true)
            for i in 0..<200 where i != 57 {
                #expect(byIndex[i]?["status"] as? String == "ok")
                #expect((byIndex[i]?["result"] as? [String: Any])?["n"] as? Int == i)
                let worker = byIndex[i]?["worker"] as? [String: Any]
                #expect(worker?["pid"] is Int && worker?["thread"] is Int && worker?["host"] is String)
            }
            #expect(output.contains { $0.contains("200 tasks: ok 199, error 1") }, "summary line")
        }
    }

    @Test("submit --input --no-wait with no consumer: exits 0 once 2,000 tasks are accepted, one {index, id} line each in order; they run later")
    func detachedBatch() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let count = 2_000
            let file = try inputFile((0..<count).map { #"{"n":\#($0)}"# }, name: "nowait")
            defer { try? FileManager.default.removeItem(at: file) }

            let started = ContinuousClock.now
            // A window smaller than the batch: slots must come back on acceptance, not on results.
            let (status, output) = try run(cluster, ["submit", "echo", "--input", file.path, "--no-wait", "--window", "300",
                                                     "--broker", cluster.frontend],
                                           timeout: .seconds(60), lastLine: "tasks accepted in")
            #expect(status == 0, "\(output.suffix(5))")
            #expect(started.duration(to: .now) < .seconds(60))
            let lines = jsonLines(output)
            #expect(lines.count == count)
            #expect(lines.compactMap { $0["index"] as? Int } == Array(0..<count), "one line per task, in input order")
            #expect(lines.allSatisfy { $0.count == 2 && $0["id"] is String }, "\(lines.first ?? [:])")
            let ids = lines.compactMap { $0["id"] as? String }
            #expect(Set(ids).count == count, "distinct ids")
            #expect(output.contains { $0.hasPrefix("\(count) tasks accepted in ") && $0.hasSuffix("tasks/s)") }, "summary line")
            #expect(try await cluster.stats().queuedTotal == count, "queued in the broker after the command is gone")

            try cluster.startConsumer(threads: 2)
            let producer = try cluster.makeProducer()
            for (i, id) in ids.enumerated() {
                var report = try await producer.status(id: id)
                let deadline = ContinuousClock.now.advanced(by: .seconds(30))
                while report.state != .done, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                    report = try await producer.status(id: id)
                }
                #expect(report.result?.status == .ok, "line \(i), task \(id): \(report)")
                #expect(report.result?.body.text == #"{"n":\#(i)}"#, "line \(i)")
            }
            let (statusExit, statusOutput) = try run(cluster, ["status", ids[count - 1], "--broker", cluster.frontend])
            #expect(statusExit == 0)
            #expect(statusOutput.contains { $0.contains(#""state":"done""#) && $0.contains(#""status":"ok""#) }, "\(statusOutput)")
        }
    }

    @Test("submit --input --no-wait: a line that is not JSON and tasks past --max-queued get error and rejected lines, exit 1; the rest are queued")
    func detachedBatchFailures() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--max-queued", "5", "--queue-share", "100"])) { cluster in
            var lines = (0..<8).map { #"{"n":\#($0)}"# }
            lines[2] = "{this is not json"
            let file = try inputFile(lines, name: "nowait-failures")
            defer { try? FileManager.default.removeItem(at: file) }

            let (status, output) = try run(cluster, ["submit", "echo", "--input", file.path, "--no-wait", "--broker", cluster.frontend],
                                           lastLine: "tasks accepted in")
            #expect(status == 1)
            let results = jsonLines(output)
            try #require(results.compactMap { $0["index"] as? Int } == Array(0..<8), "\(output)")
            for i in [0, 1, 3, 4, 5] {
                #expect(results[i]["id"] is String && results[i]["status"] == nil, "line \(i): \(results[i])")
            }
            #expect(results[2]["status"] as? String == "error")
            #expect((results[2]["error"] as? String)?.hasPrefix("line 3: not valid JSON: ") == true, "\(results[2])")
            for i in [6, 7] {
                #expect(results[i]["status"] as? String == "rejected", "line \(i): \(results[i])")
                #expect((results[i]["error"] as? String)?.contains("queue full") == true, "line \(i): \(results[i])")
                #expect(results[i]["id"] == nil)
            }
            #expect(output.contains { $0.hasPrefix("5 tasks accepted in ") && $0.hasSuffix("; 2 rejected, 1 invalid") }, "\(output)")
            #expect(try await cluster.stats().queuedTotal == 5)
            let (queued, statusOutput) = try run(cluster, ["status", try #require(results[5]["id"] as? String), "--broker", cluster.frontend])
            #expect(queued == 0)
            #expect(statusOutput.contains { $0.contains(#""state":"queued""#) }, "\(statusOutput)")
        }
    }

    @Test("submit prints the result; a failed task exits non-zero with the error on stderr; status, cancel and stats answer")
    func singleTaskCommands() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let broker = ["--broker", cluster.frontend]
            let (ok, okOutput) = try run(cluster, ["submit", "sha256", #"{"seed":"abc","iterations":1}"#] + broker)
            #expect(ok == 0)
            #expect(okOutput.contains { $0.contains(#""digest":""#) })

            let (failed, failedOutput) = try run(cluster, ["submit", "fail", #"{"message":"nope"}"#] + broker)
            #expect(failed == 1)
            #expect(failedOutput.contains { $0.contains("error: task") && $0.contains("nope") })

            let (badJSON, badOutput) = try run(cluster, ["submit", "echo", "{oops"] + broker)
            #expect(badJSON != 0)
            #expect(badOutput.contains { $0.contains("not valid JSON") })

            let (_, idOutput) = try run(cluster, ["submit", "echo", "{}", "--no-wait", "--id", "cli-task-1"] + broker, lastLine: "cli-task-1")
            #expect(idOutput.contains("cli-task-1"))
            try await waitUntil {
                let (_, statusOutput) = try run(cluster, ["status", "cli-task-1"] + broker)
                return statusOutput.contains { $0.contains(#""state":"done""#) && $0.contains(#""status":"ok""#) }
            }
            let (cancel, cancelOutput) = try run(cluster, ["cancel", "cli-task-1"] + broker)
            #expect(cancel == 1)
            #expect(cancelOutput.contains("done"))

            let (stats, statsOutput) = try run(cluster, ["stats"] + broker)
            #expect(stats == 0)
            #expect(statsOutput.contains { $0.hasPrefix("consumers: 1") })
        }
    }

    @Test("stats --json prints the broker's JSON; dead-letters lists, requeues and purges, one JSON object per line")
    func statsAndDeadLetters() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let broker = ["--broker", cluster.frontend]
            let (failed, _) = try run(cluster, ["submit", "flaky", #"{"failures":5}"#, "--attempts", "2",
                                                "--retry-backoff-ms", "10", "--id", "doomed"] + broker)
            #expect(failed == 1)

            let (status, output) = try run(cluster, ["stats", "--json"] + broker)
            #expect(status == 0)
            let json = try #require(output.first { $0.hasPrefix("{") })
            let statistics = try JSONDecoder().decode(BrokerStatistics.self, from: Data(json.utf8))
            #expect(statistics.deadLetterTotal == 1 && statistics.consumers.count == 1)
            let (_, text) = try run(cluster, ["stats"] + broker)
            #expect(text.contains("dead letters: 1"))
            #expect(text.contains { $0.hasPrefix("totals: bad_messages 0, cancelled 0, completed 1") })

            let (_, listed) = try run(cluster, ["dead-letters"] + broker)
            let letter = try JSONDecoder().decode(BrokerStatistics.DeadLetter.self,
                                                  from: Data(try #require(listed.first { $0.hasPrefix("{") }).utf8))
            #expect(letter.id == "doomed" && letter.name == "flaky" && letter.attempts == 2)
            let (_, requeued) = try run(cluster, ["dead-letters", "--requeue", "doomed"] + broker)
            #expect(requeued.contains(#"{"action":"requeue","count":1}"#))
            try await waitUntil { (try? await cluster.stats().deadLetterTotal) == 1 }
            let (_, purged) = try run(cluster, ["dead-letters", "--purge-all"] + broker)
            #expect(purged.contains(#"{"action":"purge","count":1}"#))
        }
    }

    @Test("no broker at the address: a submit, a 20,000-line batch and a status each say so within seconds, once, with exit status 69")
    func noBroker() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let nobody = "tcp://127.0.0.1:9"
            var started = ContinuousClock.now
            var (status, output) = try run(cluster, ["submit", "echo", "{}", "--broker", nobody])
            #expect(status == 69, "\(output)")
            #expect(output.contains { $0.contains("error: cannot reach a broker at \(nobody): the connection was refused or failed; is `conveyor broker` running") }, "\(output)")
            #expect(started.duration(to: .now) < .seconds(5), "said within seconds, not after the 10 s request timeout")

            let file = try inputFile((0..<20_000).map { #"{"n":\#($0)}"# }, name: "unreachable")
            defer { try? FileManager.default.removeItem(at: file) }
            started = ContinuousClock.now
            (status, output) = try run(cluster, ["submit", "echo", "--input", file.path, "--broker", nobody])
            #expect(status == 69)
            #expect(output.filter { $0.contains("cannot reach a broker") }.count == 1, "said once: \(output.prefix(5))")
            #expect(!output.contains { $0.hasPrefix("{") }, "no line per task")
            #expect(started.duration(to: .now) < .seconds(10))

            (status, output) = try run(cluster, ["status", "some-id", "--broker", nobody])
            #expect(status == 69 && output.contains { $0.contains("cannot reach a broker") }, "\(output)")
        }
    }

    @Test("a typo in a task name is said at once: a warning naming what is served, or with --require-consumer an immediate rejection")
    func unservedNameSaidAtOnce() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let started = ContinuousClock.now
            let waiting = try ManagedProcess(name: "typo", executable: cluster.executable,
                                             arguments: ["submit", "ecko", "{}", "--timeout", "4", "--broker", cluster.frontend])
            let warning = waiting.waitForLine(containing: "warning: no connected consumer serves 'ecko'", timeout: .seconds(10))
            #expect(started.duration(to: .now) < .seconds(3), "warned at once, not after the timeout")
            #expect(warning?.contains("served now: echo, fail, flaky, sha256, sleep, trace;") == true, "\(waiting.output)")
            #expect(warning?.contains("up to its timeout (4 s)") == true, "\(String(describing: warning))")
            #expect(waiting.waitForExit(timeout: .seconds(30)) == 1)

            let refusedAt = ContinuousClock.now
            let (status, output) = try run(cluster, ["submit", "ecko", "{}", "--require-consumer", "--broker", cluster.frontend])
            #expect(status == 1)
            #expect(output.contains { $0.contains("rejected: no connected consumer serves 'ecko' (require_consumer); served now: echo") }, "\(output)")
            #expect(refusedAt.duration(to: .now) < .seconds(5))
            // A served name with --require-consumer runs as usual.
            let (okStatus, okOutput) = try run(cluster, ["submit", "echo", #"{"fine":1}"#, "--require-consumer", "--broker", cluster.frontend])
            #expect(okStatus == 0 && okOutput.contains(#"{"fine":1}"#), "\(okOutput)")
        }
    }

    @Test("an id reused for another task (another name or other args) is rejected saying so; the same task again gets its result")
    func idConflicts() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            var (status, output) = try run(cluster, ["submit", "echo", #"{"v":1}"#, "--id", "dup-1", "--broker", cluster.frontend])
            #expect(status == 0 && output.contains(#"{"v":1}"#), "\(output)")
            (status, output) = try run(cluster, ["submit", "sleep", #"{"ms":1}"#, "--id", "dup-1", "--broker", cluster.frontend])
            #expect(status == 1)
            #expect(output.contains { $0.contains("id dup-1 is held by a 'echo' task; this submit names 'sleep'") }, "\(output)")
            (status, output) = try run(cluster, ["submit", "echo", #"{"v":2}"#, "--id", "dup-1", "--broker", cluster.frontend])
            #expect(status == 1)
            #expect(output.contains { $0.contains("id dup-1 is held by a 'echo' task with other args") }, "\(output)")
            (status, output) = try run(cluster, ["submit", "echo", #"{"v":1}"#, "--id", "dup-1", "--broker", cluster.frontend])
            #expect(status == 0 && output.contains(#"{"v":1}"#), "the same task again: its kept result; \(output)")
        }
    }

    @Test("a consumer pointed at the producers' port stops at once saying which port is which (exit 78); its supervisor does not restart it forever")
    func consumerAtTheFrontend() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            for processes in ["1", "2"] {
                let started = ContinuousClock.now
                let (status, output) = try run(cluster, ["consumer", "--backend", cluster.frontend, "--processes", processes],
                                               timeout: .seconds(30))
                #expect(status == 78, "--processes \(processes): \(output.suffix(5))")
                #expect(output.contains { $0.contains("is a broker's frontend, where producers connect; consumers connect to its backend") },
                        "\(output.suffix(5))")
                #expect(started.duration(to: .now) < .seconds(10), "--processes \(processes)")
            }
        }
    }

    @Test("a producer pointed at the consumers' port stops at once saying which port is which; an endpoint that is not tcp://HOST:PORT is a usage error")
    func wrongPortAndBadEndpoints() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let started = ContinuousClock.now
            var (status, output) = try run(cluster, ["submit", "echo", "{}", "--broker", cluster.backend])
            #expect(status == 69, "\(output)")
            #expect(output.contains { $0.contains("that is a broker's backend, where consumers connect; producers connect to its frontend") }, "\(output)")
            #expect(started.duration(to: .now) < .seconds(5))
            for endpoint in ["127.0.0.1:5555", "localhost:5555", "5555", "tcp://localhost", "tcp://127.0.0.1:99999"] {
                (status, output) = try run(cluster, ["submit", "echo", "{}", "--broker", endpoint])
                #expect(status == 64, "\(endpoint): \(output)")
                #expect(output.contains { $0.contains("--broker must look like tcp://HOST:PORT (for example tcp://127.0.0.1:5555), not '\(endpoint)'") }, "\(output)")
            }
            (status, output) = try run(cluster, ["consumer", "--backend", "5556"])
            #expect(status == 64 && output.contains { $0.contains("--backend must look like tcp://HOST:PORT") }, "\(output)")
        }
    }

    @Test("conveyor --version names the release, the protocol it speaks and the ones it serves, and the journal format")
    func versionNamesTheProtocol() throws {
        let process = try ManagedProcess(name: "version", executable: try Cluster.locateExecutable(), arguments: ["--version"])
        #expect(process.waitForExit(timeout: .seconds(30)) == 0)
        let line = process.output.joined(separator: "\n")
        #expect(line.hasPrefix("\(ConveyorVersion.number) ("), "\(line)")
        #expect(line.contains("protocol \(ProtocolTag.currentText)"), "\(line)")
        #expect(line.contains("serves CVY3, CVY2"), "\(line)")
        #expect(line.contains(/; journal format [0-9]+\)$/), "\(line)")
    }

    @Test("args over the broker's limit are refused at once, saying the limit, with no reconnect loop: one over the default 16 MiB, one over a broker's 1 MiB")
    func oversizedArgsRefusedBeforeSending() async throws {
        try await withCluster(.init(consumers: 1, threads: 1, brokerArguments: ["--max-message-size", "1048576"])) { cluster in
            let big = #"{"blob":""# + String(repeating: "x", count: 20_000_000) + #""}"#
            let medium = #"{"blob":""# + String(repeating: "y", count: 3_000_000) + #""}"#
            let file = try inputFile([big, medium, #"{"n":1}"#], name: "oversized")
            defer { try? FileManager.default.removeItem(at: file) }
            let started = ContinuousClock.now
            let (status, output) = try run(cluster, ["submit", "echo", "--input", file.path, "--broker", cluster.frontend],
                                           timeout: .seconds(60), lastLine: "tasks:")
            #expect(status == 1, "\(output.suffix(4))")
            #expect(started.duration(to: .now) < .seconds(20))
            let lines = jsonLines(output)
            let byIndex = Dictionary(uniqueKeysWithValues: lines.compactMap { line in (line["index"] as? Int).map { ($0, line) } })
            for index in [0, 1] {
                #expect(byIndex[index]?["status"] as? String == "rejected")
                #expect((byIndex[index]?["error"] as? String)?.contains("takes at most 1048576 bytes (1.0 MiB) per task (its --max-message-size)") == true,
                        "\(String(describing: byIndex[index]?["error"]))")
            }
            #expect(byIndex[2]?["status"] as? String == "ok")
            #expect(!output.contains { $0.contains("reconnected") }, "no reconnect: nothing too large was sent")
        }
    }
}
