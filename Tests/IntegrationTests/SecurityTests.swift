import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing
import ZeroMQ

/// Who may do what (docs/SECURITY.md), with real processes, the CLI and real CURVE keys made by
/// `conveyor keygen`: a broker started with `--curve-secret-file` and `--curve-clients-file`.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: libzmqHas("curve"), "libzmq was built without CURVE"))
struct SecurityTests {
    @Test("a listed producer submits; an unlisted key, or none, gets nothing through, is told at once, and is logged with its key; the broker stays up")
    func listedAndUnlisted() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        try await withCluster(try setup.options(consumers: 1)) { cluster in
            let alice = try cluster.makeProducer { $0.curveClientKeys = setup.alice }
            let result = try await alice.submit("echo", json: #"{"from":"alice"}"#).result()
            #expect(result.status == .ok && result.body.text == #"{"from":"alice"}"#)

            let stranger = try CurveKeyPair.generate()
            for keys in [stranger, nil] {
                let producer = try cluster.makeProducer {
                    $0.curveClientKeys = keys
                    $0.requestTimeout = .seconds(60)
                }
                let started = ContinuousClock.now
                do {
                    _ = try await producer.submit("echo", json: "[1]")
                    Issue.record("an unlisted key's task was accepted")
                } catch {
                    #expect("\(error)".contains("refused this producer's CURVE key"), "\(error)")
                }
                #expect(started.duration(to: .now) < .seconds(15), "told at once, not after the request timeout")
            }
            let broker = try #require(cluster.broker)
            let logged = broker.waitForLine(containing: "client refused", timeout: .seconds(10))
            #expect(logged?.contains(try Z85.encode(stranger.publicKey)) == true, "\(logged ?? "no log line")")
            #expect(broker.isRunning)
            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == 1)
            #expect(stats.security?.authenticated == true && (stats.security?.refusedHandshakes ?? 0) >= 2)
            #expect(stats.consumers.map(\.identity) == ["worker"])
            #expect(stats.security?.producerIdentities?["alice"] == 1, "\(String(describing: stats.security))")
        }
    }

    @Test("a listed consumer without the consume role never registers; one allowed only some names never receives another")
    func consumerRoles() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        let hasher = try ring.make("hasher")
        let log = ring.directory + "/executions.ndjson"
        var options = try setup.options(more: [(hasher.keys, "hasher roles=consume tasks=sha256")])
        options.consumerArguments = ["--curve-server-key", setup.serverKey, "--execution-log", log]
        try await withCluster(options) { cluster in
            // alice's key has only the submit role: as a consumer it is refused in the handshake.
            let aliceFile = ring.directory + "/alice.keys"
            let refusedConsumer = try cluster.startConsumer(threads: 1, arguments: ["--curve-secret-file", aliceFile])
            #expect(refusedConsumer.waitForLine(containing: "the broker refused this consumer's CURVE key", timeout: .seconds(20)) != nil,
                    "running: \(refusedConsumer.isRunning); output: \(refusedConsumer.output)")
            let worker = try cluster.startConsumer(threads: 2, arguments: ["--curve-secret-file", setup.worker.file])
            try await cluster.waitForConsumers(1)
            #expect(try await cluster.stats().consumers.first?.tasks == ["echo", "flaky", "sleep"], "registered for its allowed names only")

            let alice = try cluster.makeProducer { $0.curveClientKeys = setup.alice }
            let hashes = try await alice.submit(batch: (0..<20).map { TaskSubmission("sha256", json: RawJSON(#"{"seed":"s\#($0)","iterations":10}"#)) })
            let echoes = try await alice.submit(batch: (0..<20).map { TaskSubmission("echo", json: RawJSON(#"{"e":\#($0)}"#)) })
            for handle in echoes { #expect(await handle.result().status == .ok) }
            try await Task.sleep(for: .seconds(1))
            #expect(try await cluster.stats().queued["sha256"] == 20, "sha256 waits: the worker may not consume it")

            let hashing = try cluster.startConsumer(threads: 2, arguments: ["--curve-secret-file", hasher.file])
            for handle in hashes {
                let result = await handle.result()
                #expect(result.status == .ok && result.info?.pid == Int(hashing.pid), "\(result)")
            }
            let ran = executionLog(log)
            #expect(ran.filter { $0.name == "sha256" }.count == 20)
            #expect(!ran.contains { $0.name == "sha256" && $0.pid == Int(worker.pid) }, "the worker never received a sha256")
            let identities = try await cluster.stats().consumers.compactMap(\.identity).sorted()
            #expect(identities == ["hasher", "worker"])

            // A consumer that never got through stops at once on SIGTERM (nothing to drain; its
            // READY and DISCONNECT do not wait for a connection that does not exist).
            let stopping = ContinuousClock.now
            #expect(refusedConsumer.stop(grace: .seconds(15)) == 0)
            #expect(stopping.duration(to: .now) < .seconds(5), "stopped in \(stopping.duration(to: .now))")
        }
    }

    @Test("a rogue holding only the broker's public key cannot purge, submit or register, and its forged results change nothing; a listed producer may not purge")
    func rogue() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        try await withCluster(try setup.options(consumers: 1)) { cluster in
            let ops = try cluster.makeProducer()
            let doomed = try await ops.submit("flaky", json: #"{"failures":5}"#, options: TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 20)).result()
            #expect(doomed.status == .error)
            #expect(try await cluster.stats().deadLetterTotal == 1)

            // The rogue: a fresh key pair and the broker's public key, as every client is given.
            let rogue = try CurveKeyPair.generate()
            let front = try await RawPeer.exchange(cluster.frontend, serverKey: setup.broker.keys.publicKey, keys: rogue, messages: [
                RawPeer.message(.deadLetters, [Array("purge".utf8), []]), RawPeer.message(.purge, [Array("echo".utf8)]),
                RawPeer.message(.stats),
                RawPeer.message(.submit, [RawPeer.packed([Array("rogue-1".utf8), Array("echo".utf8), [], Array("{}".utf8)])]),
            ])
            #expect(front.replies.isEmpty && front.refused, "\(front.replies)")
            let ready = #"{"capacity":100,"threads":100,"host":"rogue","pid":666,"tasks":["echo"]}"#
            let back = try await RawPeer.exchange(cluster.backend, serverKey: setup.broker.keys.publicKey, keys: rogue,
                                                  messages: [RawPeer.message(.ready, [Array(ready.utf8)])])
            #expect(back.replies.isEmpty && back.refused)

            // A listed producer without the admin role: refused, naming the role, by the library and the CLI.
            let alice = try cluster.makeProducer { $0.curveClientKeys = setup.alice }
            await #expect {
                _ = try await alice.deadLetters(.purge)
            } throws: { error in
                "\(error)".contains("refused DEAD_LETTERS: needs the admin role")
            }
            let cli = try ManagedProcess(name: "dead-letters", executable: cluster.executable, arguments: [
                "dead-letters", "--purge-all", "--broker", cluster.frontend, "--curve-server-key", setup.serverKey,
                "--curve-secret-file", ring.directory + "/alice.keys",
            ])
            #expect(cli.waitForExit(timeout: .seconds(30)) != 0)
            #expect(cli.waitForLine(containing: "needs the admin role", timeout: .seconds(5)) != nil, "\(cli.output)")

            let stats = try await cluster.stats()
            #expect(stats.deadLetterTotal == 1, "nothing was purged")
            #expect(stats.consumers.count == 1)
            #expect(!stats.consumers.contains { $0.host == "rogue" })
            #expect(stats.totals.submitted == 1, "the rogue's task was never accepted")

            // The probe's batch: 200 tasks, every result the real consumer's own.
            let pid = try #require(cluster.consumers.first?.pid)
            let handles = try await alice.submit(batch: (0..<200).map { TaskSubmission("echo", json: RawJSON(#"{"n":\#($0)}"#)) })
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok && result.body.text == #"{"n":\#(i)}"# && result.info?.pid == Int(pid), "\(result)")
            }
        }
    }

    @Test("a listed consumer's forged ok for tasks it does not hold is ignored: the real consumer's results are delivered")
    func forgedResults() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        let forger = try ring.make("forger").keys
        try await withCluster(try setup.options(consumers: 1, more: [(forger, "forger roles=consume tasks=sleep")])) { cluster in
            let alice = try cluster.makeProducer { $0.curveClientKeys = setup.alice }
            let ids = (0..<4).map { "slow-\($0)" }
            var handles: [TaskHandle] = []
            for id in ids { handles.append(try await alice.submit("sleep", json: #"{"ms":1500}"#, id: id)) }
            let ready = #"{"capacity":0,"threads":1,"host":"forger","pid":13,"tasks":["sleep"]}"#
            let forged = ids.map { RawPeer.message(.done, [RawPeer.packed([Array($0.utf8), Array("ok".utf8), Array(#""forged""#.utf8), Array("{}".utf8)])]) }
            let exchange = try await RawPeer.exchange(cluster.backend, serverKey: setup.broker.keys.publicKey, keys: forger,
                                                      messages: [RawPeer.message(.ready, [Array(ready.utf8)])] + forged)
            #expect(!exchange.refused, "a listed consumer key connects")
            let pid = try #require(cluster.consumers.first?.pid)
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .ok && result.body.text != #""forged""# && result.info?.pid == Int(pid), "\(result)")
            }
        }
    }
}
