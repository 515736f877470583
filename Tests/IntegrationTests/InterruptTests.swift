import ConveyorProcess
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// Ctrl-C as a user at a terminal gives it, and input that arrives as a stream: the CLI leaves no
/// work behind by accident, says what it left, and never makes the user wait.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct InterruptTests {
    private func sleepFile(_ count: Int, ms: Int, name: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-\(name)-\(getpid()).ndjson")
        let lines = (0..<count).map { _ in #"{"ms":\#(ms)}"# }
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    private func cli(_ cluster: Cluster, _ arguments: [String]) throws -> ManagedProcess {
        try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
    }

    @Test("the first Ctrl-C of a batch cancels what still waits at the broker, says what was done, cancelled, left running and not sent, exit 130")
    func interruptCancelsWaitingTasks() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let file = try sleepFile(40, ms: 400, name: "interrupt")
            defer { try? FileManager.default.removeItem(at: file) }
            let process = try cli(cluster, ["submit", "sleep", "--input", file.path])
            #expect(process.waitForLine(containing: #""status":"ok""#, timeout: .seconds(20)) != nil, "\(process.output)")
            let interrupted = ContinuousClock.now
            process.send(SIGINT)
            let status = process.waitForExit(timeout: .seconds(10))
            _ = process.waitForLine(containing: "answered:", timeout: .seconds(2))
            #expect(status == 130, "\(process.output)")
            #expect(interrupted.duration(to: .now) < .seconds(6), "the interrupt is answered within seconds")
            let output = process.output
            #expect(output.contains { $0.hasPrefix("interrupted: submitting no more; cancelling") }, "\(output)")
            #expect(output.contains { $0.hasPrefix("interrupted after") }, "\(output)")
            // Every task is accounted for: a result line each (ok, or cancelled), or left running.
            let cancelledLines = output.filter { $0.contains(#""status":"cancelled""#) }.count
            let okLines = output.filter { $0.contains(#""status":"ok""#) }.count
            #expect(cancelledLines >= 25, "most of the 40 tasks were still waiting: \(output.suffix(8))")
            let running = output.first { $0.contains("still running at the broker:") }
            let runningCount = running.flatMap { Int($0.split(separator: ":")[1].split(separator: " ")[0]) } ?? 0
            #expect(okLines + cancelledLines + runningCount == 40, "\(output.suffix(8))")
            // Nothing was left queued for nobody.
            let stats = try await cluster.stats()
            #expect(stats.queuedTotal == 0, "queued after the interrupt: \(stats.queuedTotal)")
        }
    }

    @Test("--keep-on-interrupt leaves the tasks queued and says so; a second Ctrl-C exits at once")
    func keepOnInterruptAndSecondSignal() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let file = try sleepFile(30, ms: 400, name: "keep")
            defer { try? FileManager.default.removeItem(at: file) }
            let keeping = try cli(cluster, ["submit", "sleep", "--input", file.path, "--keep-on-interrupt"])
            #expect(keeping.waitForLine(containing: #""status":"ok""#, timeout: .seconds(20)) != nil)
            keeping.send(SIGINT)
            #expect(keeping.waitForExit(timeout: .seconds(10)) == 130)
            _ = keeping.waitForLine(containing: "left at the broker", timeout: .seconds(2))
            #expect(keeping.output.contains { $0.contains("left at the broker (--keep-on-interrupt):") }, "\(keeping.output.suffix(6))")
            #expect(try await cluster.stats().queuedTotal > 0, "the tasks stay queued")

            let impatient = try cli(cluster, ["submit", "sleep", "--input", file.path])
            #expect(impatient.waitForLine(containing: #""status":"ok""#, timeout: .seconds(20)) != nil)
            // A broker that does not answer (stopped): the cancellations would wait their 3 s.
            let broker = try #require(cluster.broker)
            broker.send(SIGSTOP)
            defer { broker.send(SIGCONT) }
            let first = ContinuousClock.now
            impatient.send(SIGINT)
            _ = impatient.waitForLine(containing: "interrupted: submitting no more", timeout: .seconds(2))
            impatient.send(SIGINT)
            #expect(impatient.waitForExit(timeout: .seconds(5)) == 130)
            #expect(first.duration(to: .now) < .seconds(2), "a second Ctrl-C does not wait")
            _ = impatient.waitForLine(containing: "interrupted again", timeout: .seconds(2))
            #expect(impatient.output.contains { $0.hasPrefix("interrupted again: exiting now") }, "\(impatient.output.suffix(4))")
        }
    }

    @Test("--input from a pipe is streamed: each line's result comes while the input is still open; blank lines make no task and keep line numbers")
    func streamedInput() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-fifo-\(getpid())").path
            unlink(fifo)
            #expect(mkfifo(fifo, 0o600) == 0)
            defer { unlink(fifo) }
            let process = try cli(cluster, ["submit", "echo", "--input", fifo])
            let writer = open(fifo, O_WRONLY)
            #expect(writer >= 0)
            func send(_ text: String) { _ = text.withCString { write(writer, $0, strlen($0)) } }
            send(#"{"n":0}"# + "\n\n" + #"{"n":2}"# + "\n")
            #expect(process.waitForLine(containing: #""n":2"#, timeout: .seconds(10)) != nil,
                    "results come before the input ends: \(process.output)")
            #expect(process.isRunning)
            send("   \n" + #"{"n":4}"# + "\nnot json\n" + #"{"n":6}"#)
            close(writer)
            #expect(process.waitForExit(timeout: .seconds(10)) == 1, "one line is not JSON: \(process.output)")
            _ = process.waitForLine(containing: "tasks:", timeout: .seconds(2))
            let lines = process.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let indexes = Set(lines.compactMap { $0["index"] as? Int })
            #expect(indexes == [0, 2, 4, 5, 6], "blank lines keep their numbers and make no line: \(process.output)")
            for line in lines where line["status"] as? String == "ok" {
                #expect((line["result"] as? [String: Any])?["n"] as? Int == line["index"] as? Int)
                #expect(line["elapsed_ms"] is Double, "elapsed_ms is kept: \(line)")
            }
            #expect(process.output.contains { $0.hasPrefix("5 tasks: ok 4, error 1") }, "\(process.output.suffix(3))")
        }
    }

    @Test("a consumer supervisor drains at the first signal and stops at once at the second, handing unstarted tasks back")
    func consumerTwoStepStop() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let file = try sleepFile(12, ms: 20_000, name: "drain")
            defer { try? FileManager.default.removeItem(at: file) }
            let submit = try cli(cluster, ["submit", "sleep", "--input", file.path, "--no-wait"])
            #expect(submit.waitForExit(timeout: .seconds(20)) == 0)
            let consumer = try ManagedProcess(name: "consumer", executable: cluster.executable, arguments: [
                "consumer", "--backend", cluster.backend, "--processes", "2", "--threads", "1",
            ])
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            while try await cluster.stats().running < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            consumer.send(SIGINT)
            #expect(consumer.waitForLine(containing: "consumer draining", timeout: .seconds(10)) != nil, "\(consumer.output.suffix(4))")
            try await Task.sleep(for: .seconds(1))
            #expect(consumer.isRunning, "the first signal drains: the 20 s tasks are still running")
            let second = ContinuousClock.now
            consumer.send(SIGINT)
            #expect(consumer.waitForExit(timeout: .seconds(10)) != nil, "\(consumer.output.suffix(6))")
            #expect(second.duration(to: .now) < .seconds(5), "the second signal does not wait for the 20 s tasks")
            #expect(consumer.output.contains { $0.hasPrefix("stopping now:") }, "\(consumer.output.suffix(6))")
            // Every task is back in the queue for another consumer: none lost, none running.
            let back = ContinuousClock.now.advanced(by: .seconds(10))
            var stats = try await cluster.stats()
            while stats.queuedTotal < 12, ContinuousClock.now < back {
                try await Task.sleep(for: .milliseconds(100))
                stats = try await cluster.stats()
            }
            #expect(stats.queuedTotal == 12 && stats.running == 0, "queued \(stats.queuedTotal), running \(stats.running)")
        }
    }
}
