import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// `--log-format json`: every log line a JSON object with stable keys, the task's metadata in
/// the consumer's per-task lines.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct JSONLogTests {
    @Test("--log-format json: broker and consumer log lines parse as JSON with ts, level, msg; a failed task's line has task.id, task.name and error")
    func jsonLines() async throws {
        let json = ["--log-format", "json"]
        try await withCluster(.init(consumers: 1, threads: 1, brokerArguments: json, consumerArguments: json)) { cluster in
            let submit = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: [
                "submit", "fail", #"{"message":"disk on fire"}"#, "--id", "json-1", "--broker", cluster.frontend,
            ])
            #expect(submit.waitForExit(timeout: .seconds(30)) == 1)
            let consumer = try #require(cluster.consumers.first)
            #expect(consumer.waitForLine(containing: "task failed", timeout: .seconds(10)) != nil)
            for process in [consumer, try #require(cluster.broker)] {
                let objects = process.output.filter { $0.hasPrefix("{") }.map { line in
                    (line, try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                }
                #expect(objects.count >= 2, "\(process.name): \(process.output.prefix(5))")
                for (line, object) in objects {
                    #expect(object?["ts"] is String && object?["level"] is String && object?["msg"] is String, "not a log object: \(line)")
                }
                // Text lines are only what the commands print on purpose (the broker's endpoints).
                #expect(process.output.allSatisfy { $0.hasPrefix("{") || $0.hasPrefix("frontend ") || $0.hasPrefix("backend ") },
                        "\(process.output.filter { !$0.hasPrefix("{") })")
            }
            let failed = consumer.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first { $0["msg"] as? String == "task failed" }
            #expect(failed?["task.id"] as? String == "json-1" && failed?["task.name"] as? String == "fail")
            #expect((failed?["error"] as? String)?.contains("disk on fire") == true, "\(String(describing: failed))")
            #expect(failed?["level"] as? String == "info")
        }
    }
}
