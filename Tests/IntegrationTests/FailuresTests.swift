import ConveyorProcess
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// Every task that ends without succeeding is listable, with the default `--attempts 1` too
/// (where it makes no dead letter), and the list survives a broker restart.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FailuresTests {
    private func cli(_ cluster: Cluster, _ arguments: [String]) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
        let status = process.waitForExit(timeout: .seconds(30))
        _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
        return (status, process.output)
    }

    @Test("conveyor failures lists failed and timed-out tasks (not ok, not cancelled), newest first, by name, as JSON, and after a restart")
    func failuresAreListed() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            #expect(try cli(cluster, ["submit", "fail", #"{"message":"disk on fire"}"#, "--id", "f1"]).0 == 1)
            #expect(try cli(cluster, ["submit", "sleep", #"{"ms":3000}"#, "--timeout", "0.5", "--id", "f2"]).0 == 1)
            #expect(try cli(cluster, ["submit", "echo", "{}", "--id", "f3"]).0 == 0)
            #expect(try cli(cluster, ["submit", "sleep", #"{"ms":100}"#, "--no-wait", "--id", "f4"]).0 == 0)
            _ = try cli(cluster, ["cancel", "f4"])

            let (status, text) = try cli(cluster, ["failures"])
            #expect(status == 0)
            let listed = text.filter { $0.contains("  f") }
            #expect(listed.count == 2, "only the failure and the timeout: \(text)")
            #expect(listed.first?.contains("f2  sleep  timeout") == true, "newest first: \(listed)")
            #expect(listed.last?.contains("f1  fail  error  1 attempt  args 26 B  disk on fire") == true, "\(listed)")

            let (_, json) = try cli(cluster, ["failures", "--json", "--name", "fail"])
            let objects = json.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(objects.count == 1)
            #expect(objects.first?["id"] as? String == "f1" && objects.first?["kind"] as? String == "handler_error")
            #expect(objects.first?["args_bytes"] as? Int == 26 && objects.first?["at"] is Double)

            try cluster.restartBroker()
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            var after: [String] = []
            while ContinuousClock.now < deadline {
                after = try cli(cluster, ["failures"]).1.filter { $0.contains("  f") }
                if after.count == 2 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(after.count == 2, "restored from the journal: \(after)")
            #expect(after.last?.contains("disk on fire") == true && after.last?.contains("args gone (restored)") == true, "\(after)")
        }
    }
}
