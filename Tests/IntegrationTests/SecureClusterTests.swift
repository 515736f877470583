import ConveyorProtocol
import ConveyorProcess
import ConveyorTesting
import Foundation
import ConveyorProducer
import Testing
import ZeroMQ

/// CURVE on the command line: `conveyor keygen`, a broker started with `--curve-secret-file`,
/// consumers and producers with `--curve-server-key` / `curveServerKey`.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: libzmqHasCurve(), "libzmq was built without CURVE"))
struct SecureClusterTests {
    /// `conveyor keygen`, run for real: its two keys, and the file holding its output.
    static func keygen() throws -> (publicKey: String, file: URL) {
        let process = try ManagedProcess(name: "keygen", executable: try Cluster.locateExecutable(), arguments: ["keygen"])
        #expect(process.waitForExit(timeout: .seconds(30)) == 0)
        let lines = process.output
        let publicKey = try #require(lines.first { $0.hasPrefix("public-key ") }).dropFirst("public-key ".count)
        let secretKey = try #require(lines.first { $0.hasPrefix("secret-key ") }).dropFirst("secret-key ".count)
        #expect(publicKey.utf8.count == 40 && secretKey.utf8.count == 40)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-keys-\(UUID().uuidString)")
        try Data(lines.filter { $0.hasPrefix("public-key ") || $0.hasPrefix("secret-key ") }.joined(separator: "\n").utf8)
            .write(to: file)
        return (String(publicKey), file)
    }

    @Test("a CURVE broker serves keyed consumers and producers, prints its public key, and ignores clients without the key")
    func curveCluster() async throws {
        let (publicKey, file) = try Self.keygen()
        defer { try? FileManager.default.removeItem(at: file) }
        let serverKey = try Z85.decode(publicKey)
        let options = Cluster.Options(
            consumers: 1, threads: 2, brokerArguments: ["--curve-secret-file", file.path, "--curve-allow-any-client"],
            consumerArguments: ["--curve-server-key", publicKey], curveServerKey: serverKey)
        try await withCluster(options) { cluster in
            // The broker derives and prints the public key of the secret it was given.
            let broker = try #require(cluster.broker)
            #expect(broker.waitForLine(containing: "curve-public-key ", timeout: .seconds(10)) == "curve-public-key \(publicKey)")

            let producer = try cluster.makeProducer()
            let result = try await producer.submit("echo", json: #"{"secret":"sauce"}"#).result()
            #expect(result.status == .ok && result.body.text == #"{"secret":"sauce"}"#)

            // Without the broker's key, or with another one, nothing gets through: a clear timeout.
            for key in [nil, try CurveKeyPair.generate().publicKey] {
                let stranger = try cluster.makeProducer {
                    $0.curveServerKey = key
                    $0.requestTimeout = .milliseconds(500)
                }
                await #expect(throws: ProducerError.self) { try await stranger.submit("echo", json: "[1]") }
            }
            // At the terminal: without the key, the CLI says at once that the handshake failed
            // and how to give the key (exit 69), and the broker logs the refused handshake.
            let started = ContinuousClock.now
            let cli = try ManagedProcess(name: "cli", executable: cluster.executable,
                                         arguments: ["submit", "echo", "{}", "--broker", cluster.frontend])
            #expect(cli.waitForExit(timeout: .seconds(20)) == 69)
            #expect(started.duration(to: .now) < .seconds(5))
            _ = cli.waitForLine(containing: "handshake", timeout: .seconds(2))
            #expect(cli.output.contains { $0.contains("the handshake with the broker at \(cluster.frontend) failed: if the broker uses CURVE, give its public key with --curve-server-key") },
                    "\(cli.output)")
            #expect(broker.waitForLine(containing: "a client's handshake failed", timeout: .seconds(5)) != nil)
            // A consumer with the wrong key never registers.
            try cluster.startConsumer(threads: 1, arguments: ["--curve-server-key", try Z85.encode(CurveKeyPair.generate().publicKey)])
            try await Task.sleep(for: .seconds(1))
            #expect(try await cluster.stats().consumers.count == 1)
        }
    }

    @Test("--curve-server-key and --curve-secret-file refuse what is not a key, with the option's name")
    func badKeys() throws {
        let executable = try Cluster.locateExecutable()
        let submit = try ManagedProcess(name: "submit", executable: executable,
                                        arguments: ["submit", "echo", "{}", "--curve-server-key", "not-a-key"])
        #expect(submit.waitForExit(timeout: .seconds(30)) != 0)
        #expect(submit.output.contains { $0.contains("--curve-server-key must be a CURVE key") })
        let broker = try ManagedProcess(name: "broker", executable: executable,
                                        arguments: ["broker", "--curve-secret-file", "/nonexistent/keys"])
        #expect(broker.waitForExit(timeout: .seconds(30)) != 0)
        #expect(broker.output.contains { $0.contains("cannot read --curve-secret-file") })
    }
}

/// Whether libzmq was built with CURVE (Debian's is).
func libzmqHasCurve() -> Bool {
    (try? CurveKeyPair.generate()) != nil
}
