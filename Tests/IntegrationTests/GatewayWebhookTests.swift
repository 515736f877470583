import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Webhook callbacks end to end (docs/GATEWAY.md, "Webhook callbacks"): a real broker, consumers
/// and gateway, and a receiver (Tests/Support/webhooks/receiver.py) that checks every signature
/// with the `standardwebhooks` package from PyPI and fails each delivery's first two attempts.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct GatewayWebhookTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8(($0 * 13 + 5) % 256) }).base64EncodedString()

    /// The receiver: its process and port.
    struct Receiver {
        let process: ManagedProcess
        let port: Int
        let directory: String

        static func start(failFirst: Int) throws -> Receiver {
            let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-receiver-")
            try GatewayWebhookTests.secret.write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Support/webhooks/receiver.py").path
            let process = try ManagedProcess(name: "receiver", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                             arguments: ["python3", script, "--secret-file", directory + "/secret", "--fail-first", "\(failFirst)"])
            guard let line = process.waitForLine(timeout: .seconds(20), where: { Int($0) != nil }), let port = Int(line) else {
                _ = process.stop()
                throw GatewayTestError("the receiver did not start (pip install standardwebhooks): \(process.output.suffix(10))")
            }
            return Receiver(process: process, port: port, directory: directory)
        }

        struct Attempt: Decodable {
            let id: String
            let path: String
            let verified: Bool
            let status: Int
            let body: String
        }

        func log() throws -> [Attempt] {
            let answer = try HTTPClient(port: port).request("GET", "/log")
            return try JSONDecoder().decode([Attempt].self, from: answer.body)
        }

        /// Waits until `done` holds for the log, or `timeout`.
        func wait(_ timeout: Duration, until done: ([Attempt]) -> Bool) throws -> [Attempt] {
            let end = ContinuousClock.now + timeout
            while true {
                let attempts = try log()
                if done(attempts) || ContinuousClock.now >= end { return attempts }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }

        func stop() {
            _ = process.stop(grace: .seconds(2))
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func gatewayArguments(_ cluster: Cluster) throws -> [String] {
        let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-webhook-secret-")
        try Self.secret.write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        return ["--webhook-secret-file", directory + "/secret", "--callback-allow", "127.0.0.1", "--backend", cluster.backend]
    }

    @Test("each task's result is POSTed once successfully, signed, after two 503s; a host off the allow-list is refused at submit")
    func deliveredOnce() async throws {
        let receiver = try Receiver.start(failFirst: 2)
        defer { receiver.stop() }
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let gateway = try GatewayProcess.start(cluster, arguments: try gatewayArguments(cluster))
            defer { gateway.stop() }
            let client = gateway.client()
            let hook = "http://127.0.0.1:\(receiver.port)/hook"
            var ids: [String] = []
            for n in 0..<3 {
                let posted = try client.json("POST", "/v1/tasks", ["name": "echo", "args": ["n": n], "callback_url": hook])
                #expect(posted.status == 202, "\(posted)")
                ids.append(try #require(posted.json["id"] as? String))
            }
            let failed = try client.json("POST", "/v1/tasks", ["name": "fail", "args": ["message": "broken"], "callback_url": hook])
            ids.append(try #require(failed.json["id"] as? String))
            // 2 × 503 each, 5 s then 10 s apart: about 15 s.
            let attempts = try receiver.wait(.seconds(90)) { log in log.filter { $0.status == 204 }.count >= ids.count }
            let delivered = attempts.filter { $0.status == 204 }
            #expect(delivered.count == ids.count, "one successful delivery per task: \(attempts.map { "\($0.id) \($0.status)" })")
            #expect(attempts.allSatisfy { $0.verified }, "every attempt verifies with standardwebhooks")
            #expect(Set(delivered.map(\.id)).count == ids.count, "one webhook-id per task")
            for attempt in delivered {
                #expect(attempts.filter { $0.id == attempt.id }.map(\.status) == [503, 503, 204])
            }
            let events = delivered.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any] }
            #expect(Set(events.compactMap { $0["id"] as? String }) == Set(ids))
            let failure = try #require(events.first { $0["id"] as? String == ids[3] })
            #expect(failure["status"] as? String == "failed" && (failure["error"] as? [String: Any])?["error"] as? String == "broken")
            // Nothing more arrives.
            try await Task.sleep(for: .seconds(1))
            let later = try receiver.log().filter { $0.status == 204 }
            #expect(later.count == ids.count)

            let outside = try client.json("POST", "/v1/tasks", ["name": "echo", "callback_url": "http://10.9.9.9/hook"])
            #expect(outside.status == 400 && outside.errorMessage.contains("--callback-allow"), "\(outside)")
            let scheme = try client.json("POST", "/v1/tasks", ["name": "echo", "callback_url": "ftp://127.0.0.1/x"])
            #expect(scheme.status == 400 && scheme.errorMessage.hasPrefix("callback_url"), "\(scheme)")
        }
    }

    @Test("the gateway killed -9 before a task ends: restarted, it still delivers the callback exactly once")
    func gatewayKilled() async throws {
        let receiver = try Receiver.start(failFirst: 0)
        defer { receiver.stop() }
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let arguments = try gatewayArguments(cluster)
            let first = try GatewayProcess.start(cluster, arguments: arguments)
            let posted = try first.client().json("POST", "/v1/tasks", ["name": "sleep", "args": ["ms": 1500],
                                                                       "callback_url": "http://127.0.0.1:\(receiver.port)/hook"])
            #expect(posted.status == 202, "\(posted)")
            let id = try #require(posted.json["id"] as? String)
            first.process.send(SIGKILL)
            _ = first.process.waitForExit(timeout: .seconds(10))
            // The task ends while no gateway runs: its delivery waits at the broker, journaled.
            try await Task.sleep(for: .seconds(3))
            let early = try receiver.log()
            #expect(early.isEmpty)
            let second = try GatewayProcess.start(cluster, arguments: arguments)
            defer { second.stop() }
            let attempts = try receiver.wait(.seconds(30)) { !$0.isEmpty }
            try await Task.sleep(for: .seconds(1))
            let all = try receiver.log()
            #expect(all.count == 1 && all.first?.status == 204 && all.first?.verified == true, "\(attempts.map(\.status))")
            let event = try #require(try JSONSerialization.jsonObject(with: Data((all.first?.body ?? "").utf8)) as? [String: Any])
            #expect(event["id"] as? String == id && event["status"] as? String == "succeeded")
        }
    }

    @Test("a receiver that never answers: each attempt times out, and the delivery is retried, not lost")
    func neverAnswers() async throws {
        let receiver = try Receiver.start(failFirst: 0)
        defer { receiver.stop() }
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let gateway = try GatewayProcess.start(cluster, arguments: try gatewayArguments(cluster) + ["--webhook-timeout", "1"])
            defer { gateway.stop() }
            let posted = try gateway.client().json("POST", "/v1/tasks", ["name": "echo", "callback_url": "http://127.0.0.1:\(receiver.port)/slow"])
            #expect(posted.status == 202, "\(posted)")
            // Attempt 1 at once, attempt 2 after 1 s + 5 s of backoff.
            let attempts = try receiver.wait(.seconds(40)) { $0.count >= 2 }
            #expect(attempts.count >= 2 && attempts.allSatisfy { $0.path == "/slow" && $0.verified }, "\(attempts.map(\.path))")
            #expect(Set(attempts.map(\.id)).count == 1, "the same delivery, tried again")
        }
    }
}
