import ConveyorProcess
import ConveyorSystem
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The consumer supervisor with real child processes (small shell scripts standing in for
/// consumers), in a ServiceGroup as `conveyor consumer --processes P` runs it.
@Suite("Supervisor", .serialized)
struct SupervisorTests {
    /// A fresh directory for a test's marker files.
    func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `supervisor` in a group of its own; the result once the group ends.
    func start(_ supervisor: Supervisor) -> (ServiceGroup, OneShot<Result<Void, any Error>>) {
        let group = ServiceGroup(configuration: .init(services: [.init(service: supervisor)], logger: ConsumerTests.logger))
        let ended = OneShot<Result<Void, any Error>>()
        Task {
            do {
                try await group.run()
                ended.set(.success(()))
            } catch {
                ended.set(.failure(error))
            }
        }
        return (group, ended)
    }

    /// Waits, with a deadline, until `body` holds.
    func eventually(_ timeout: Duration = patience, _ body: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if body() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return body()
    }

    func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    @Test("shutdown sends SIGTERM, and SIGKILL to a child that ignores it once the grace has passed")
    func killsAChildThatIgnoresSigterm() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("pid").path
        // Ignores SIGTERM (an ignored signal stays ignored across exec), then says its pid.
        let script = "trap '' TERM; echo $$ > \(marker).tmp; mv \(marker).tmp \(marker); exec sleep 60"
        let grace: Duration = .milliseconds(500)
        let supervisor = Supervisor(
            configuration: .init(executable: "/bin/sh", count: 1, shutdownGrace: grace) { _ in ["-c", script] },
            logger: ConsumerTests.logger)
        let (group, ended) = start(supervisor)
        try #require(try await eventually { FileManager.default.fileExists(atPath: marker) }, "the child did not start")
        let pid = try #require(Int32(String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(isAlive(pid))

        let asked = ContinuousClock.now
        await group.triggerGracefulShutdown()
        let outcome = await ended.wait()
        let took = asked.duration(to: .now)
        #expect(throws: Never.self) { try outcome.get() }
        #expect(took >= grace, "SIGKILL came before the grace was over (\(took))")
        #expect(took < grace + .seconds(5), "the supervisor took \(took) to end a child that ignores SIGTERM")
        #expect(!isAlive(pid), "the child is still there")
    }

    @Test("a child that honours SIGTERM ends at once, without waiting for the grace")
    func sigtermEndsAChild() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("started").path
        let supervisor = Supervisor(
            configuration: .init(executable: "/bin/sh", count: 2, shutdownGrace: .seconds(30)) { index in
                ["-c", "touch \(marker)-\(index); exec sleep 60"]
            },
            logger: ConsumerTests.logger)
        let (group, ended) = start(supervisor)
        try #require(try await eventually {
            FileManager.default.fileExists(atPath: "\(marker)-0") && FileManager.default.fileExists(atPath: "\(marker)-1")
        })
        let asked = ContinuousClock.now
        await group.triggerGracefulShutdown()
        _ = await ended.wait()
        #expect(asked.duration(to: .now) < .seconds(10))
    }

    @Test("a child that dies is restarted, with its index, after a backoff")
    func restartsChildren() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("runs").path
        var configuration = Supervisor.Configuration(executable: "/bin/sh", count: 1, shutdownGrace: .seconds(1)) { index in
            ["-c", "echo \(index) >> \(log); exit 3"]
        }
        configuration.initialBackoff = .milliseconds(20)
        configuration.maximumBackoff = .milliseconds(80)
        let (group, ended) = start(Supervisor(configuration: configuration, logger: ConsumerTests.logger))
        let runs = { (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? [] }
        #expect(try await eventually { runs().count >= 3 }, "the child was not restarted")
        #expect(runs().allSatisfy { $0 == "0" })
        await group.triggerGracefulShutdown()
        _ = await ended.wait()
    }

    @Test("a second run() of a supervisor fails with a clear error")
    func runsOnce() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("started").path
        let supervisor = Supervisor(
            configuration: .init(executable: "/bin/sh", count: 1, shutdownGrace: .seconds(1)) { _ in
                ["-c", "touch \(marker); exec sleep 60"]
            },
            logger: ConsumerTests.logger)
        let (group, ended) = start(supervisor)
        try #require(try await eventually { FileManager.default.fileExists(atPath: marker) }, "the first run did not start")
        await #expect {
            try await supervisor.run()
        } throws: { error in
            (error as? ServiceStateError)?.description.contains("already running") == true
        }
        await group.triggerGracefulShutdown()
        _ = await ended.wait()
    }

    @Test("a child's arguments are the parent's own, without the options that make it a supervisor")
    func childArguments() {
        let parent = ["consumer", "--backend", "tcp://h:1", "--processes", "4", "--threads", "2",
                      "--processes=5", "--process-index", "1", "--log-level", "debug"]
        #expect(Supervisor.arguments(parent, removing: ["--processes", "--process-index"])
                == ["consumer", "--backend", "tcp://h:1", "--threads", "2", "--log-level", "debug"])
    }
}
