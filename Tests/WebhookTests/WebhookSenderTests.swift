import ConveyorConsumer
import ConveyorProtocol
@testable import ConveyorWebhooks
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Testing

/// Deliveries against a real HTTP receiver (Tests/Support/webhooks/receiver.py) that checks every
/// signature with the `standardwebhooks` package from PyPI: what is retried, what is final, what
/// the policy refuses.
@Suite("Webhook sender against a real receiver", .serialized)
final class WebhookSenderTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
    let receiver: Process
    let port: Int
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let secretFile = folder.appendingPathComponent("secret")
        try Self.secret.write(to: secretFile, atomically: true, encoding: .utf8)
        let portFile = folder.appendingPathComponent("port")
        receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/webhooks/receiver.py").path
        receiver.arguments = ["python3", script, "--secret-file", secretFile.path, "--fail-first", "2", "--port-file", portFile.path]
        receiver.standardOutput = FileHandle.nullDevice
        try receiver.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: portFile.path) {
            guard receiver.isRunning, Date() < deadline else {
                throw ReceiverFailed(description: "the receiver did not start (is the standardwebhooks package installed? pip install standardwebhooks)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        port = Int(try String(contentsOf: portFile, encoding: .utf8)) ?? 0
    }

    deinit {
        // Not `waitUntilExit()`: on Linux it waits on a run loop that a test thread does not turn.
        kill(receiver.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(at: folder)
    }

    struct ReceiverFailed: Error, CustomStringConvertible { let description: String }

    func sender(allow: [String] = ["127.0.0.1"], redirects: Int = 0) throws -> WebhookSender {
        WebhookSender(signer: try WebhookSigner(secret: Self.secret), policy: try CallbackPolicy(allowing: allow),
                      attemptTimeout: .seconds(2), maxRedirects: redirects, logger: Logger(label: "webhook-tests"))
    }

    func args(_ url: String) -> [UInt8] {
        Webhook.deliveryArgs(url: url, id: "t-1", name: "echo", sequence: 7, status: .ok, body: Array(#"{"n":1}"#.utf8),
                             info: Array(#"{"host":"h"}"#.utf8), attempts: 1, finishedAt: 1_800_000_000_000_000_000)
    }

    struct Attempt: Decodable { let id: String; let path: String; let verified: Bool; let status: Int; let body: String }

    func log() async throws -> [Attempt] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/log")!)
        return try JSONDecoder().decode([Attempt].self, from: data)
    }

    @Test("503 twice is retried, the third attempt succeeds; every attempt verifies with standardwebhooks; the body is the event")
    func retriedThenDelivered() async throws {
        let sender = try sender()
        let url = "http://127.0.0.1:\(port)/hook"
        for attempt in 1...2 {
            await #expect(throws: WebhookSender.Retry.self) { _ = try await sender.deliver(args: args(url), id: "d-1", attempt: UInt32(attempt)) }
        }
        let result = try await sender.deliver(args: args(url), id: "d-1", attempt: 3)
        #expect(result.text.contains("\"status\":204"))
        let attempts = try await log()
        #expect(attempts.map(\.status) == [503, 503, 204] && attempts.allSatisfy { $0.verified && $0.id == "d-1" })
        let event = try #require(try JSONSerialization.jsonObject(with: Data(attempts[2].body.utf8)) as? [String: Any])
        #expect(event["id"] as? String == "t-1" && event["status"] as? String == "succeeded")
        #expect(event["finished_at"] as? String == "2027-01-15T08:00:00.000Z")
        try await sender.client.shutdown()
    }

    @Test("a 4xx is final, a redirect is not followed by default (and checked again when it is), a timeout is retried")
    func finalAndRetried() async throws {
        let sender = try sender()
        await #expect(throws: TaskInputError.self) { _ = try await sender.deliver(args: args("http://127.0.0.1:\(port)/gone"), id: "g", attempt: 1) }
        do {
            _ = try await sender.deliver(args: args("http://127.0.0.1:\(port)/redirect"), id: "r", attempt: 1)
            Issue.record("a redirect was followed")
        } catch let error as TaskInputError {
            #expect(error.message.contains("do not follow redirects"))
        }
        let following = try self.sender(redirects: 2)
        await #expect(throws: WebhookSender.Retry.self, "followed to /hook, which fails its first two") {
            _ = try await following.deliver(args: args("http://127.0.0.1:\(port)/redirect"), id: "r2", attempt: 1)
        }
        let started = Date()
        await #expect(throws: WebhookSender.Retry.self) { _ = try await sender.deliver(args: args("http://127.0.0.1:\(port)/slow"), id: "s", attempt: 1) }
        #expect(Date().timeIntervalSince(started) < 20, "the attempt timeout (2 s) ends it")
        let closed = try self.sender()
        await #expect(throws: WebhookSender.Retry.self, "nothing listens on port 9") {
            _ = try await closed.deliver(args: args("http://127.0.0.1:9/hook"), id: "c", attempt: 1)
        }
        for client in [sender.client, following.client, closed.client] { try await client.shutdown() }
    }

    @Test("a name that resolves to an internal address is refused at delivery unless the address is allowed")
    func internalAddressRefused() async throws {
        let byName = try sender(allow: ["localhost"])
        #expect(byName.policy.problem(url: "http://localhost:\(port)/hook") == nil, "allowed at submit, by name")
        do {
            _ = try await byName.deliver(args: args("http://localhost:\(port)/hook"), id: "l", attempt: 1)
            Issue.record("delivered to an internal address")
        } catch let error as TaskInputError {
            #expect(error.message.contains("an internal address not on --callback-allow"), "\(error.message)")
        }
        #expect(try await log().isEmpty, "nothing reached the receiver")
        try await byName.client.shutdown()
    }

    @Test("the policy: names, wildcards, addresses and networks; internal ranges; bad entries")
    func policy() throws {
        let policy = try CallbackPolicy(allowing: ["hooks.example.com,*.example.org", "10.1.0.0/16", "::1"])
        #expect(policy.problem(url: "https://hooks.example.com/x") == nil)
        #expect(policy.problem(url: "https://a.b.example.org/x") == nil)
        #expect(policy.problem(url: "https://example.org/x") != nil, "the wildcard is for names under it")
        #expect(policy.problem(url: "http://10.1.2.3:8080/x") == nil)
        #expect(policy.problem(url: "http://10.2.0.1/x")?.contains("not on this gateway's --callback-allow list") == true)
        #expect(policy.problem(url: "http://[::1]:80/x") == nil)
        #expect(policy.problem(url: "http://evil.com/x") != nil)
        #expect(try CallbackPolicy(allowing: []).problem(url: "http://a.com/")?.contains("allows no callback hosts") == true)
        for inside in ["127.0.0.1", "10.0.0.1", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                         "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "64:ff9b::a00:1"] {
            #expect(CallbackPolicy.isInternal(try #require(CallbackPolicy.address(inside))), "\(inside)")
        }
        for external in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            #expect(!CallbackPolicy.isInternal(try #require(CallbackPolicy.address(external))), "\(external)")
        }
        #expect(policy.problem(address: CallbackPolicy.address("10.1.9.9")!, of: "x") == nil, "allowed by its network")
        #expect(throws: CallbackPolicy.BadEntry.self) { try CallbackPolicy(allowing: ["10.0.0.0/40"]) }
        #expect(throws: CallbackPolicy.BadEntry.self) { try CallbackPolicy(allowing: ["ev il"]) }
        #expect(WebhookSender.pinned("http://localhost:8080/a?b=1", host: "localhost", to: [127, 0, 0, 1]) == "http://127.0.0.1:8080/a?b=1")
        #expect(WebhookSender.pinned("https://localhost/a", host: "localhost", to: [127, 0, 0, 1]) == "https://localhost/a")
    }

    @Test("secrets: whsec_ and base64 of 24-64 bytes; the signature is Standard Webhooks' v1")
    func signer() throws {
        #expect(throws: WebhookSigner.BadSecret.self) { try WebhookSigner(secret: "plain") }
        #expect(throws: WebhookSigner.BadSecret.self) { try WebhookSigner(secret: "whsec_AAAA") }
        // The example of the Standard Webhooks specification's test suite.
        let signer = try WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330,
                                 body: Array(#"{"test": 2432232314}"#.utf8)) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }
}
