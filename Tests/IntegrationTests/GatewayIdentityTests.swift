import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing
import ZeroMQ

/// Per-token broker identities (docs/GATEWAY.md, "Tokens and broker identities"): a token line's
/// `key=FILE` makes that token's producer connect with its own CURVE key, so a broker that
/// authenticates clients sees each token as that key's identity: its roles, its fair share, and
/// a submit-only identity lists only its own tasks.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: libzmqHas("curve"), "libzmq was built without CURVE"))
struct GatewayIdentityTests {
    @Test("tokens with key= are their keys' identities at a CURVE broker: each listed apart in stats, each lists only its own tasks; a token without one uses the gateway's key")
    func perTokenIdentities() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        let (a, b, gateway) = (try ring.make("tenant-a"), try ring.make("tenant-b"), try ring.make("gw"))
        let options = try setup.options(consumers: 1, more: [(a.keys, "tenant-a roles=submit tasks=echo"), (b.keys, "tenant-b roles=submit tasks=echo"),
                                                             (gateway.keys, "gw roles=submit tasks=echo")])
        try await withCluster(options) { cluster in
            let (tokenA, tokenB, tokenC) = ("token-a-0123456789abcdef", "token-b-0123456789abcdef", "token-c-0123456789abcdef")
            let tokens = ring.directory + "/tokens"
            try """
                \(tokenA) scopes=submit,read name=a key=\(a.file)
                \(tokenB) scopes=submit,read name=b key=\(b.file)
                \(tokenC) scopes=submit,read name=c
                """.write(toFile: tokens, atomically: true, encoding: .utf8)
            let process = try ManagedProcess(name: "gateway", executable: cluster.executable, arguments: [
                "gateway", "--listen", "127.0.0.1:0", "--broker", cluster.frontend, "--token-file", tokens,
                "--curve-server-key", setup.serverKey, "--curve-secret-file", gateway.file,
            ])
            defer { _ = process.stop() }
            let line = try #require(process.waitForLine(containing: "listening http://", timeout: .seconds(30)), "\(process.output)")
            let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })

            var ids: [String: [String]] = [:]
            for (token, name, count) in [(tokenA, "a", 2), (tokenB, "b", 1), (tokenC, "c", 1)] {
                for n in 0..<count {
                    let posted = try HTTPClient(port: port, token: token).json("POST", "/v1/tasks", ["name": "echo", "args": ["from": name, "n": n]])
                    #expect(posted.status == 202, "\(posted)")
                    ids[name, default: []].append(try #require(posted.json["id"] as? String))
                }
            }
            for (name, list) in ids {
                let token = name == "a" ? tokenA : name == "b" ? tokenB : tokenC
                for id in list {
                    let done = try HTTPClient(port: port, token: token).request("GET", "/v1/tasks/\(id)?wait=20")
                    #expect(done.json["status"] as? String == "ok", "\(done)")
                }
            }
            let identities = try #require(try await cluster.stats().security?.producerIdentities)
            #expect(identities["tenant-a"] != nil && identities["tenant-b"] != nil && identities["gw"] != nil, "\(identities)")

            // A submit-only identity lists its own tasks only.
            let listedA = try HTTPClient(port: port, token: tokenA).request("GET", "/v1/tasks?name=echo&limit=100")
            let seenA = Set((listedA.json["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
            #expect(seenA == Set(ids["a"]!), "token a sees its own two tasks: \(listedA)")
            let listedB = try HTTPClient(port: port, token: tokenB).request("GET", "/v1/tasks?name=echo&limit=100")
            let seenB = Set((listedB.json["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
            #expect(seenB == Set(ids["b"]!), "token b sees its own task: \(listedB)")
        }
    }

    @Test("key= without --curve-server-key, or a key file that cannot be read, stops the gateway at start, saying which token")
    func badKeys() async throws {
        let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-token-keys-")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try Cluster.locateExecutable()
        for (line, expected) in [("token-a-0123456789abcdef scopes=read name=a key=\(directory)/missing.keys", "token 'a': key=\(directory)/missing.keys"),
                                 ("token-a-0123456789abcdef scopes=read name=a key=KEYFILE", "needs --curve-server-key")] {
            var text = line
            if line.contains("KEYFILE") {
                let keygen = try ManagedProcess(name: "keygen", executable: executable, arguments: ["keygen", "--output", directory + "/a.keys"])
                #expect(keygen.waitForExit(timeout: .seconds(30)) == 0)
                text = line.replacingOccurrences(of: "KEYFILE", with: directory + "/a.keys")
            }
            try text.write(toFile: directory + "/tokens", atomically: true, encoding: .utf8)
            let gateway = try ManagedProcess(name: "gateway", executable: executable,
                                             arguments: ["gateway", "--listen", "127.0.0.1:0", "--token-file", directory + "/tokens"])
            #expect(gateway.waitForExit(timeout: .seconds(20)) == 64)
            _ = gateway.waitForLine(timeout: .milliseconds(200)) { _ in false }
            #expect(gateway.output.joined(separator: "\n").contains(expected), "\(gateway.output)")
        }
    }
}
