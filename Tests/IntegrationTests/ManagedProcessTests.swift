import ConveyorProcess
import Foundation
import Testing

/// `ManagedProcess`'s `async` waits: they see lines and exits as they come, give up at their
/// deadline or on cancellation, and hold no thread while they wait.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ManagedProcessTests {
    private func shell(_ script: String) throws -> ManagedProcess {
        try ManagedProcess(name: "sh", executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script])
    }

    @Test("lines and the exit status arrive as the child makes them; a line that never comes ends with the output")
    func linesAndExit() async throws {
        let process = try shell("echo one; sleep 0.2; echo two; exit 3")
        #expect(await process.waitForLine(containing: "two", timeout: .seconds(30)) == "two")
        #expect(await process.waitForLine(containing: "one", timeout: .seconds(1)) == "one", "earlier lines count")
        #expect(await process.waitForExit(timeout: .seconds(30)) == 3)
        let started = ContinuousClock.now
        #expect(await process.waitForLine(containing: "three", timeout: .seconds(30)) == nil)
        #expect(started.duration(to: .now) < .seconds(5), "the wait ended with the output, not at its deadline")
        #expect(process.output == ["one", "two"])
        #expect(!process.isRunning)
    }

    @Test("waits end at their deadline; signals go through at any time, SIGTERM too from a child started on a pool thread")
    func deadlinesAndSignals() async throws {
        // Started from a thread of Swift's pool, where libdispatch blocks nearly every signal: the
        // child must not inherit that mask, or `sleep` would never see the SIGTERM of `stop`.
        let process = try shell("exec sleep 30")
        #expect(await process.waitForExit(timeout: .milliseconds(200)) == nil)
        #expect(await process.waitForLine(timeout: .milliseconds(200)) { _ in true } == nil)
        process.send(SIGSTOP)
        process.send(SIGCONT)
        #expect(process.isRunning)
        let started = ContinuousClock.now
        #expect(await process.stop(grace: .seconds(5)) == SIGTERM)
        #expect(started.duration(to: .now) < .seconds(4), "SIGTERM ended it, not the SIGKILL after the grace")
    }

    @Test("more waiters than the pool has threads: none holds a thread, so the kill that ends them runs")
    func waitersHoldNoThread() async throws {
        let process = try shell("exec sleep 30")
        let started = ContinuousClock.now
        let statuses = await withTaskGroup(of: Int32?.self) { group in
            for _ in 0..<8 {
                group.addTask { await process.waitForExit(timeout: .seconds(60)) }
            }
            for _ in 0..<8 {
                group.addTask { await process.waitForLine(timeout: .seconds(60)) { $0 == "never" }.map { _ in 0 } }
            }
            try? await Task.sleep(for: .milliseconds(200))
            process.send(SIGKILL)
            return await group.reduce(into: [Int32?]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == SIGKILL }.count == 8)
        #expect(statuses.filter { $0 == nil }.count == 8)
        #expect(started.duration(to: .now) < .seconds(20))
    }

    @Test("a cancelled wait returns at once")
    func cancellation() async throws {
        let process = try shell("exec sleep 30")
        defer { process.send(SIGKILL) }
        let started = ContinuousClock.now
        let wait = Task { await process.waitForLine(containing: "never", timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        wait.cancel()
        #expect(await wait.value == nil)
        #expect(started.duration(to: .now) < .seconds(10))
    }
}
