import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// `conveyor gateway` as a process against a real broker and consumers, over real HTTP.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct GatewayTests {
    @Test("POST /v1/tasks answers 202 with an id; GET ?wait= has the result; a name no consumer serves is a 422 with the broker's reason")
    func submitAndWait() async throws {
        try await withGateway { _, gateway in
            let client = gateway.client()
            let posted = try client.json("POST", "/v1/tasks", ["name": "echo", "args": ["n": 7, "x": 1.5]])
            #expect(posted.status == 202, "\(posted)")
            #expect(posted.json["status"] as? String == "accepted")
            let id = try #require(posted.json["id"] as? String)
            let done = try client.request("GET", "/v1/tasks/\(id)?wait=30")
            #expect(done.status == 200, "\(done)")
            #expect(done.json["state"] as? String == "done" && done.json["status"] as? String == "ok", "\(done)")
            #expect((done.json["result"] as? [String: Any])?["n"] as? Int == 7, "\(done)")
            #expect(done.json["attempts"] as? Int == 1 && (done.json["worker"] as? [String: Any])?["pid"] is Int, "\(done)")

            let failed = try client.json("POST", "/v1/tasks", ["name": "fail", "args": ["message": "broken"]])
            let failure = try client.request("GET", "/v1/tasks/\(try #require(failed.json["id"] as? String))?wait=30")
            #expect(failure.json["status"] as? String == "error", "\(failure)")
            #expect((failure.json["error"] as? [String: Any])?["message"] as? String == "broken", "\(failure)")

            let unknown = try client.json("POST", "/v1/tasks", ["name": "no-such-task", "args": [:]])
            #expect(unknown.status == 422 && unknown.errorCode == "unknown_task", "\(unknown)")
            #expect(unknown.errorMessage.hasPrefix("name: "), "\(unknown)")
            let missing = try client.request("GET", "/v1/tasks/never-submitted")
            #expect(missing.status == 404 && missing.errorCode == "not_found", "\(missing)")
            let badWait = try client.request("GET", "/v1/tasks/\(id)?wait=999")
            #expect(badWait.status == 400 && badWait.errorMessage.hasPrefix("wait: "), "\(badWait)")
        }
    }

    @Test("Idempotency-Key: the same key and token give the same task; another token's same key is another task")
    func idempotency() async throws {
        try await withGateway { _, gateway in
            let body: [String: Any] = ["name": "echo", "args": ["k": 1]]
            let first = try gateway.client().json("POST", "/v1/tasks", body, headers: ["Idempotency-Key": "order-42"])
            let again = try gateway.client().json("POST", "/v1/tasks", body, headers: ["Idempotency-Key": "order-42"])
            let other = try gateway.client(GatewayProcess.other).json("POST", "/v1/tasks", body, headers: ["Idempotency-Key": "order-42"])
            #expect(first.status == 202 && again.status == 202 && other.status == 202, "\(first) \(again) \(other)")
            let id = try #require(first.json["id"] as? String)
            #expect(again.json["id"] as? String == id)
            #expect(other.json["id"] as? String != id)
            let listed = try gateway.client().request("GET", "/v1/tasks?name=echo&limit=1000")
            let ids = (listed.json["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(ids.filter { $0 == id }.count == 1, "\(listed)")
            // Each token is its own producer identity at the broker (its own fair share).
            let producers = (listed.json["tasks"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) {
                if let id = $1["id"] as? String { $0[id] = $1["producer"] as? String }
            }
            let otherID = try #require(other.json["id"] as? String)
            #expect(producers[id] != nil && producers[otherID] != nil && producers[id] != producers[otherID], "\(producers)")
        }
    }

    @Test("POST /v1/tasks/batch gives one result per task, in order, the broker's refusals among them; a malformed item fails the batch with its field named")
    func batch() async throws {
        try await withGateway { _, gateway in
            let tasks: [[String: Any]] = [
                ["name": "echo", "args": ["i": 0]], ["name": "no-such-task"], ["name": "echo", "args": ["i": 2], "options": ["priority": 5]],
            ]
            let answer = try gateway.client().json("POST", "/v1/tasks/batch", ["tasks": tasks])
            #expect(answer.status == 200, "\(answer)")
            let results = try #require(answer.json["results"] as? [[String: Any]])
            #expect(results.count == 3 && answer.json["accepted"] as? Int == 2, "\(answer)")
            #expect(results.map { $0["index"] as? Int } == [0, 1, 2])
            #expect(results.map { $0["status"] as? String } == ["accepted", "rejected", "accepted"], "\(answer)")
            #expect((results[1]["error"] as? [String: Any])?["code"] as? String == "unknown_task", "\(answer)")
            let malformed = try gateway.client().json("POST", "/v1/tasks/batch", ["tasks": [["name": "echo"], ["name": "echo", "colour": "red"]]])
            #expect(malformed.status == 400 && malformed.errorMessage.hasPrefix("tasks[1].colour"), "\(malformed)")
            for result in results where result["status"] as? String == "accepted" {
                let done = try gateway.client().request("GET", "/v1/tasks/\(try #require(result["id"] as? String))?wait=30")
                #expect(done.json["status"] as? String == "ok", "\(done)")
            }
            let empty = try gateway.client().json("POST", "/v1/tasks/batch", ["tasks": [Any]()])
            #expect(empty.status == 400 && empty.errorMessage.hasPrefix("tasks: "), "\(empty)")
        }
    }

    @Test("DELETE cancels a task that waits (200), says 409 for a running one and 404 for an unknown id")
    func cancel() async throws {
        try await withGateway(threads: 1, arguments: []) { _, gateway in
            let client = gateway.client()
            let running = try #require(try client.json("POST", "/v1/tasks", ["name": "sleep", "args": ["ms": 4000]]).json["id"] as? String)
            // Event, not timing: until the broker says it runs.
            var state = ""
            for _ in 0..<200 where state != "running" {
                state = try client.request("GET", "/v1/tasks/\(running)").json["state"] as? String ?? ""
                if state != "running" { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(state == "running")
            let waiting = try #require(try client.json("POST", "/v1/tasks", ["name": "echo"]).json["id"] as? String)
            let cancelled = try client.request("DELETE", "/v1/tasks/\(waiting)")
            #expect(cancelled.status == 200 && cancelled.json["outcome"] as? String == "cancelled", "\(cancelled)")
            let shown = try client.request("GET", "/v1/tasks/\(waiting)")
            #expect(shown.json["status"] as? String == "cancelled", "\(shown)")
            let busy = try client.request("DELETE", "/v1/tasks/\(running)")
            #expect(busy.status == 409 && busy.errorCode == "running", "\(busy)")
            let unknown = try client.request("DELETE", "/v1/tasks/no-such-id")
            #expect(unknown.status == 404, "\(unknown)")
            let reader = try gateway.client(GatewayProcess.reader).request("DELETE", "/v1/tasks/\(running)")
            #expect(reader.status == 403, "\(reader)")
        }
    }

    @Test("GET /v1/tasks lists by state and name, a page at a time through next_cursor; GET /v1/stats is the broker's")
    func listing() async throws {
        try await withGateway { _, gateway in
            let client = gateway.client()
            var failed: [String] = []
            for i in 0..<3 {
                failed.append(try #require(try client.json("POST", "/v1/tasks", ["name": "fail", "args": ["message": "m\(i)"]]).json["id"] as? String))
                _ = try client.json("POST", "/v1/tasks", ["name": "echo", "args": ["i": i]])
            }
            for id in failed { _ = try client.request("GET", "/v1/tasks/\(id)?wait=30") }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try client.request("GET", "/v1/tasks?state=failed&limit=1" + (cursor.map { "&cursor=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""))
                #expect(page.status == 200, "\(page)")
                seen += (page.json["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page.json["next_cursor"] as? String
                pages += 1
            } while cursor != nil && pages < 20
            #expect(seen.sorted() == failed.sorted(), "\(seen)")
            let named = try client.request("GET", "/v1/tasks?name=echo").json["tasks"] as? [[String: Any]] ?? []
            #expect(named.count == 3 && named.allSatisfy { $0["name"] as? String == "echo" })
            let badState = try client.request("GET", "/v1/tasks?state=lost")
            #expect(badState.status == 400 && badState.errorMessage.hasPrefix("state: "), "\(badState)")
            let unknownParameter = try client.request("GET", "/v1/tasks?colour=red")
            #expect(unknownParameter.status == 400 && unknownParameter.errorCode == "unknown_field", "\(unknownParameter)")
            let stats = try client.request("GET", "/v1/stats")
            #expect(stats.status == 200 && stats.json["broker"] is [String: Any], "\(stats)")
        }
    }

    @Test("401 without a token or with a wrong one, 403 without the scope, 429 past the rate with Retry-After")
    func authentication() async throws {
        try await withGateway { _, gateway in
            let body: [String: Any] = ["name": "echo"]
            let none = try gateway.client(nil).json("POST", "/v1/tasks", body)
            #expect(none.status == 401 && none.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(none)")
            let wrong = try gateway.client("full-token-0123456789abcdeX").json("POST", "/v1/tasks", body)
            #expect(wrong.status == 401 && wrong.errorCode == "unauthorized", "\(wrong)")
            let reader = try gateway.client(GatewayProcess.reader).json("POST", "/v1/tasks", body)
            #expect(reader.status == 403 && reader.errorMessage.contains("submit"), "\(reader)")
            #expect(try gateway.client(GatewayProcess.reader).request("GET", "/v1/stats").status == 200)
            let slow = gateway.client(GatewayProcess.slow)
            let statuses = try (0..<3).map { _ in try slow.json("POST", "/v1/tasks", body) }
            #expect(statuses.map(\.status) == [202, 202, 429], "\(statuses)")
            #expect(statuses[2].errorCode == "rate_limited" && Int(statuses[2].headers["retry-after"] ?? "") ?? 0 >= 1, "\(statuses[2])")
            let health = try gateway.client(nil).request("GET", "/healthz")
            #expect(health.status == 200 && health.json["status"] as? String == "ok")
        }
    }

    @Test("400 on malformed JSON, an unknown field or a bad option (the field named); 413 past --max-body-bytes; JSON 404 and 405")
    func badBodies() async throws {
        try await withGateway(arguments: ["--max-body-bytes", "65536"]) { _, gateway in
            let client = gateway.client()
            let malformed = try client.request("POST", "/v1/tasks", body: Data(#"{"name": "echo", "#.utf8))
            #expect(malformed.status == 400 && malformed.errorCode == "bad_json", "\(malformed)")
            let array = try client.request("POST", "/v1/tasks", body: Data("[1]".utf8))
            #expect(array.status == 400 && array.errorMessage.contains("not an array"), "\(array)")
            let unknown = try client.json("POST", "/v1/tasks", ["name": "echo", "colour": "red"])
            #expect(unknown.status == 400 && unknown.errorCode == "unknown_field" && unknown.errorMessage.hasPrefix("colour"), "\(unknown)")
            let option = try client.json("POST", "/v1/tasks", ["name": "echo", "options": ["priority": "high"]])
            #expect(option.status == 400 && option.errorMessage.hasPrefix("options.priority"), "\(option)")
            let noName = try client.json("POST", "/v1/tasks", ["args": [:]])
            #expect(noName.status == 400 && noName.errorMessage.hasPrefix("name"), "\(noName)")
            let callback = try client.json("POST", "/v1/tasks", ["name": "echo", "callback_url": "https://example.com/done"])
            #expect(callback.status == 422 && callback.errorCode == "callbacks_off", "\(callback)")
            let big = Data(#"{"name":"echo","args":{"pad":""#.utf8) + Data(repeating: UInt8(ascii: "x"), count: 100_000) + Data(#""}}"#.utf8)
            let tooLarge = try client.request("POST", "/v1/tasks", body: big)
            #expect(tooLarge.status == 413 && tooLarge.errorCode == "body_too_large", "\(tooLarge)")
            let chunked = try client.request("POST", "/v1/tasks", body: Data("1000\r\n".utf8) + big.prefix(4096) + Data("\r\n".utf8)
                                             + Data(String(format: "%x\r\n", big.count - 4096).utf8) + big.dropFirst(4096) + Data("\r\n0\r\n\r\n".utf8),
                                             headers: ["Transfer-Encoding": "chunked"])
            #expect(chunked.status == 413, "\(chunked)")
            let route = try client.request("GET", "/v2/nothing")
            #expect(route.status == 404 && route.errorCode == "not_found", "\(route)")
            let method = try client.request("PUT", "/v1/tasks")
            #expect(method.status == 405 && method.headers["allow"] == "GET, POST", "\(method)")
            let spec = try client.request("GET", "/openapi.json")
            #expect(spec.status == 200 && spec.json["openapi"] as? String == "3.1.0", "\(spec.text.prefix(200))")
        }
    }

    @Test("the gateway refuses to start without tokens, with a bad token file (the line named), or on a non-loopback address")
    func startupRefusals() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            for (arguments, text) in [
                (["gateway", "--listen", "127.0.0.1:0"], "--token-file"),
                (["gateway", "--listen", "0.0.0.0:0", "--no-auth"], "loopback"),
                (["gateway", "--listen", "10.1.2.3:8080", "--no-auth"], "loopback"),
            ] {
                let process = try ManagedProcess(name: "gateway", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
                let status = process.waitForExit(timeout: .seconds(30))
                _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
                #expect(status == 64, "\(arguments): \(process.output)")
                #expect(process.output.joined(separator: "\n").contains(text), "\(arguments): \(process.output)")
            }
            let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-gateway-")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try "# tokens\nshort scopes=read\n".write(toFile: directory + "/tokens", atomically: true, encoding: .utf8)
            let bad = try ManagedProcess(name: "gateway", executable: cluster.executable,
                                         arguments: ["gateway", "--listen", "127.0.0.1:0", "--token-file", directory + "/tokens", "--broker", cluster.frontend])
            #expect(bad.waitForExit(timeout: .seconds(30)) == 64)
            _ = bad.waitForLine(timeout: .milliseconds(200)) { _ in false }
            #expect(bad.output.contains { $0.contains("tokens:2:") && $0.contains("at least 16 characters") }, "\(bad.output)")
            let open = try ManagedProcess(name: "gateway", executable: cluster.executable,
                                          arguments: ["gateway", "--listen", "127.0.0.1:0", "--no-auth", "--broker", cluster.frontend])
            let line = try #require(open.waitForLine(containing: "listening http://", timeout: .seconds(30)), "\(open.output)")
            let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })
            #expect(try HTTPClient(port: port).request("GET", "/v1/stats").status == 200)
            #expect(open.stop() == 0)
        }
    }
}
