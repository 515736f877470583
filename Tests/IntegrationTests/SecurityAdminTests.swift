import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing
import ZeroMQ

/// Running an authenticating broker: reloading its clients file, key files and their modes, whose
/// tasks are whose.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: libzmqHas("curve"), "libzmq was built without CURVE"))
struct SecurityAdminTests {
    @Test("SIGHUP: a removed key is refused at its next connection, an added one gets in; a malformed file is refused naming its line and the old list stays")
    func reloadOnSighup() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        let bob = try ring.make("bob").keys, carol = try ring.make("carol").keys
        try await withCluster(try setup.options(consumers: 1, more: [(bob, "bob roles=submit")])) { cluster in
            let broker = try #require(cluster.broker)
            let early = try cluster.makeProducer { $0.curveClientKeys = bob }
            #expect(try await early.submit("echo", json: "[1]").result().status == .ok)

            try ring.writeClients([(setup.ops, "ops roles=admin,submit"), (setup.worker.keys, "worker roles=consume"),
                                   (carol, "carol roles=submit")])
            broker.send(SIGHUP)
            #expect(broker.waitForLine(containing: "clients file reloaded", timeout: .seconds(10))?.contains("keys=3") == true)
            let late = try cluster.makeProducer {
                $0.curveClientKeys = bob
                $0.requestTimeout = .seconds(60)
            }
            await #expect {
                _ = try await late.submit("echo", json: "[2]")
            } throws: { error in
                "\(error)".contains("refused this producer's CURVE key")
            }
            let newcomer = try cluster.makeProducer { $0.curveClientKeys = carol }
            #expect(try await newcomer.submit("echo", json: "[3]").result().status == .ok)

            // A bad file: refused, the line named, the list in force kept.
            try "# a comment\nthis is not a key line\n".write(toFile: ring.clients, atomically: true, encoding: .utf8)
            broker.send(SIGHUP)
            let refusal = broker.waitForLine(containing: "clients file not reloaded", timeout: .seconds(10))
            #expect(refusal?.contains("line 2") == true && refusal?.contains("keys=3") == true, "\(refusal ?? "no log line")")
            let again = try cluster.makeProducer { $0.curveClientKeys = carol }
            #expect(try await again.submit("echo", json: "[4]").result().status == .ok)
            #expect(broker.isRunning)
        }
    }

    @Test("keygen --output writes mode 0600 and never overwrites; keygen > FILE is made 0600; the broker warns of a secret file others can read")
    func keyFiles() throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let (file, _) = try ring.make("first")
        #expect(Self.mode(file) == 0o600)
        let before = try String(contentsOfFile: file, encoding: .utf8)
        let again = try ManagedProcess(name: "keygen", executable: ring.executable, arguments: ["keygen", "--output", file])
        #expect(again.waitForExit(timeout: .seconds(30)) == 1)
        #expect(again.waitForLine(containing: "never overwrites", timeout: .seconds(5)) != nil, "\(again.output)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == before, "the file is untouched")

        let redirected = ring.directory + "/redirected.keys"
        let shell = try ManagedProcess(name: "keygen", executable: URL(fileURLWithPath: "/bin/sh"),
                                       arguments: ["-c", "umask 022; '\(ring.executable.path)' keygen > '\(redirected)'"])
        #expect(shell.waitForExit(timeout: .seconds(30)) == 0)
        #expect(Self.mode(redirected) == 0o600)
        #expect(try String(contentsOfFile: redirected, encoding: .utf8).contains("secret-key "))

        chmod(file, 0o644)
        try "\(try Z85.encode(CurveKeyPair.generate().publicKey)) someone roles=submit\n".write(toFile: ring.clients, atomically: true, encoding: .utf8)
        let broker = try ManagedProcess(name: "broker", executable: ring.executable, arguments: [
            "broker", "--in-memory", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
            "--curve-secret-file", file, "--curve-clients-file", ring.clients,
        ])
        defer { _ = broker.stop() }
        #expect(broker.waitForLine(containing: "readable by others", timeout: .seconds(30))?.contains("mode 644") == true)

        // CURVE without a clients file is a choice to make, not a default.
        let open = try ManagedProcess(name: "broker", executable: ring.executable, arguments: [
            "broker", "--in-memory", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*", "--curve-secret-file", redirected,
        ])
        #expect(open.waitForExit(timeout: .seconds(30)) != 0)
        #expect(open.waitForLine(containing: "--curve-clients-file", timeout: .seconds(5)) != nil, "\(open.output)")
    }

    @Test("status and cancel of another identity's task are refused naming the admin role, and so is a resubmission of its id and a pause; an admin may")
    func ownTasks() async throws {
        let ring = try KeyRing()
        defer { ring.remove() }
        let setup = try SecureSetup(ring: ring)
        let bob = try ring.make("bob").keys
        try await withCluster(try setup.options(more: [(bob, "bob roles=submit")])) { cluster in
            let alice = try cluster.makeProducer { $0.curveClientKeys = setup.alice }
            let other = try cluster.makeProducer { $0.curveClientKeys = bob }
            let handle = try await alice.submit("parked", json: "{}", id: "alice-1")
            await #expect {
                _ = try await other.status(id: "alice-1")
            } throws: { error in
                "\(error)".contains("refused STATUS alice-1") && "\(error)".contains("admin role")
            }
            await #expect {
                _ = try await other.cancel(id: "alice-1")
            } throws: { error in
                "\(error)".contains("refused CANCEL alice-1")
            }
            await #expect {
                _ = try await other.submit("parked", json: "{}", id: "alice-1")
            } throws: { error in
                "\(error)".contains("another identity's task")
            }
            #expect(try await alice.status(id: "alice-1").state == .queued, "its own status")
            let ops = try cluster.makeProducer()
            #expect(try await ops.cancel(id: "alice-1") == .cancelled, "an admin may cancel anyone's task")
            #expect(await handle.result().status == .cancelled)
            // Pausing a name is an admin's too.
            await #expect {
                _ = try await other.pause(name: "parked")
            } throws: { error in
                "\(error)".contains("refused PAUSE") && "\(error)".contains("admin role")
            }
            let paused = try await ops.pause(name: "parked")
            #expect(paused.paused && paused.changed, "an admin may pause a name")
            #expect(try await ops.resume(name: "parked").changed)
        }
    }

    static func mode(_ path: String) -> mode_t {
        var status = stat()
        return stat(path, &status) == 0 ? status.st_mode & 0o777 : 0
    }
}
