import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// `conveyor pause NAME` and `conveyor resume NAME` against real processes: a paused name's tasks
/// are accepted and stay queued while other names run, the pause survives a broker restart, and a
/// resume runs everything.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PauseCLITests {
    /// Runs `conveyor` with `arguments` against the cluster's broker; `lastLine`: text of the line
    /// it prints last, waited for so that no line is still in the pipe.
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

    /// Submits one task per line of `lines` with `--no-wait`; returns their ids, in order.
    private func submitDetached(_ cluster: Cluster, _ name: String, _ lines: [String]) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-pause-\(name)-\(getpid()).ndjson")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (status, output) = try cli(cluster, ["submit", name, "--input", file.path, "--no-wait"], lastLine: "tasks accepted in")
        #expect(status == 0, "\(output.suffix(5))")
        return output.compactMap { line in
            guard line.hasPrefix("{"),
                  let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return object["id"] as? String
        }
    }

    /// Waits until every task of `ids` is done; returns the statuses of their results.
    private func waitForResults(_ producer: Producer, _ ids: [String], timeout: Duration = .seconds(30)) async throws -> [TaskStatus?] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var statuses: [TaskStatus?] = []
        for id in ids {
            var report = try await producer.status(id: id)
            while report.state != .done, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                report = try await producer.status(id: id)
            }
            statuses.append(report.result?.status)
        }
        return statuses
    }

    @Test("pause echo: 20 echo tasks stay queued while 5 sha256 ones run; still paused after a broker restart; resume runs all 20")
    func pauseSurvivesRestartAndResumeRunsAll() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            var (status, output) = try cli(cluster, ["pause", "echo"], lastLine: "conveyor resume echo")
            #expect(status == 0, "\(output)")
            #expect(output.contains { $0.hasPrefix("paused 'echo': 0 queued tasks wait") }, "\(output)")

            let echoIDs = try submitDetached(cluster, "echo", (0..<20).map { #"{"n":\#($0)}"# })
            let shaIDs = try submitDetached(cluster, "sha256", (0..<5).map { #"{"seed":"s\#($0)","iterations":10}"# })
            #expect(echoIDs.count == 20 && shaIDs.count == 5)

            let producer = try cluster.makeProducer()
            let shaStatuses = try await waitForResults(producer, shaIDs)
            #expect(shaStatuses.allSatisfy { $0 == .ok }, "other names run: \(shaStatuses)")
            for id in echoIDs {
                let state = try await producer.status(id: id).state
                #expect(state == .queued, "\(id) of the paused name: \(state)")
            }
            (status, output) = try cli(cluster, ["status", echoIDs[0]])
            #expect(status == 0)
            #expect(output.contains { $0.contains(#""state":"queued""#) }, "\(output)")
            (status, output) = try cli(cluster, ["stats"])
            #expect(output.contains { $0.hasPrefix("paused: echo (20 queued)") }, "\(output)")
            #expect(try await cluster.stats().paused == ["echo"])

            // Pausing again says so, and how many wait.
            (status, output) = try cli(cluster, ["pause", "echo"], lastLine: "conveyor resume echo")
            #expect(output.contains { $0.hasPrefix("'echo' was already paused: 20 queued tasks wait") }, "\(output)")

            // The pause is durable: a broker restarted on the same data directory keeps it.
            try cluster.restartBroker()
            try await cluster.waitForConsumers(1)
            let restarted = try await cluster.stats()
            #expect(restarted.paused == ["echo"])
            #expect(restarted.queued["echo"] == 20, "\(restarted.queued)")
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await cluster.stats().queued["echo"] == 20, "the consumer is back, and still gets none")

            (status, output) = try cli(cluster, ["resume", "echo"])
            #expect(status == 0, "\(output)")
            #expect(output.contains { $0.hasPrefix("resumed 'echo'") }, "\(output)")
            let echoStatuses = try await waitForResults(producer, echoIDs)
            #expect(echoStatuses.allSatisfy { $0 == .ok }, "\(echoStatuses)")
            #expect(try await cluster.stats().paused == [])
        }
    }
}
