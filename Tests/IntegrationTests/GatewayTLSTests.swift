import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// `conveyor gateway --tls-cert-file --tls-key-file` (docs/GATEWAY.md, "TLS"): a certificate made
/// by `openssl` for this test, served by the gateway, checked by Python's `ssl` against that CA.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct GatewayTLSTests {
    private func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (Int32?, String) {
        let process = try ManagedProcess(name: arguments[0], executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: arguments)
        let status = process.waitForExit(timeout: timeout)
        if status == nil { _ = process.stop(grace: .seconds(2)) }
        _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
        return (status, process.output.joined(separator: "\n"))
    }

    @Test("HTTPS with a certificate the client checks: /healthz and an authenticated submit; plain HTTP to it fails; bad files are refused at start")
    func servesHTTPS() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-tls-")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (cert, key) = (directory + "/gateway.pem", directory + "/gateway.key")
            let made = try run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert])
            try #require(made.0 == 0, "openssl: \(made.1)")
            let tokens = directory + "/tokens"
            try "\(GatewayProcess.full) scopes=submit,read rate=1000 name=full\n".write(toFile: tokens, atomically: true, encoding: .utf8)

            let gateway = try ManagedProcess(name: "gateway", executable: cluster.executable, arguments: [
                "gateway", "--listen", "127.0.0.1:0", "--broker", cluster.frontend, "--token-file", tokens,
                "--tls-cert-file", cert, "--tls-key-file", key,
            ])
            defer { _ = gateway.stop() }
            let line = try #require(gateway.waitForLine(containing: "listening https://", timeout: .seconds(30)), "\(gateway.output)")
            let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })

            let client = """
                import json, ssl, sys, urllib.request
                context = ssl.create_default_context(cafile=sys.argv[1])
                base = "https://127.0.0.1:" + sys.argv[2]
                print("healthz", urllib.request.urlopen(base + "/healthz", context=context, timeout=10).status)
                request = urllib.request.Request(base + "/v1/tasks?wait=1", data=json.dumps({"name": "echo", "args": {"over": "tls"}}).encode(),
                                                 headers={"Authorization": "Bearer " + sys.argv[3], "Content-Type": "application/json"})
                reply = json.load(urllib.request.urlopen(request, context=context, timeout=10))
                print("submitted", reply["status"])
                task = urllib.request.Request(base + "/v1/tasks/" + reply["id"] + "?wait=10", headers={"Authorization": "Bearer " + sys.argv[3]})
                print("result", json.dumps(json.load(urllib.request.urlopen(task, context=context, timeout=20))["result"], sort_keys=True))
                try:
                    urllib.request.urlopen(base + "/healthz", context=ssl.create_default_context(), timeout=10)
                    print("unchecked certificate accepted")
                except Exception as error:
                    print("refused without the CA:", type(error).__name__)
                """
            let answered = try run(["python3", "-c", client, cert, "\(port)", GatewayProcess.full])
            #expect(answered.0 == 0, "\(answered.1)")
            #expect(answered.1.contains("healthz 200"), "\(answered.1)")
            #expect(answered.1.contains("submitted accepted"), "\(answered.1)")
            #expect(answered.1.contains(#"result {"over": "tls"}"#), "\(answered.1)")
            #expect(answered.1.contains("refused without the CA"), "a client that does not trust the certificate is refused: \(answered.1)")

            let plain = try run(["python3", "-c", "import urllib.request,sys\ntry:\n urllib.request.urlopen('http://127.0.0.1:'+sys.argv[1]+'/healthz', timeout=5); print('plain answered')\nexcept Exception as e: print('plain refused', type(e).__name__)", "\(port)"])
            #expect(plain.1.contains("plain refused"), "plain HTTP to the TLS port gets no answer: \(plain.1)")

            // A key that is not a key, and a certificate without its key: refused at start, saying which.
            try "not a key".write(toFile: directory + "/bad.key", atomically: true, encoding: .utf8)
            let bad = try ManagedProcess(name: "gateway", executable: cluster.executable, arguments: [
                "gateway", "--listen", "127.0.0.1:0", "--broker", cluster.frontend, "--token-file", tokens,
                "--tls-cert-file", cert, "--tls-key-file", directory + "/bad.key",
            ])
            #expect(bad.waitForExit(timeout: .seconds(20)) == 64)
            _ = bad.waitForLine(timeout: .milliseconds(200)) { _ in false }
            #expect(bad.output.joined().contains("--tls-key-file \(directory)/bad.key"), "\(bad.output)")
            let half = try ManagedProcess(name: "gateway", executable: cluster.executable, arguments: [
                "gateway", "--listen", "0.0.0.0:0", "--broker", cluster.frontend, "--token-file", tokens, "--tls-cert-file", cert,
            ])
            #expect(half.waitForExit(timeout: .seconds(20)) == 64)
            _ = half.waitForLine(timeout: .milliseconds(200)) { _ in false }
            #expect(half.output.joined().contains("go together"), "\(half.output)")
        }
    }
}
