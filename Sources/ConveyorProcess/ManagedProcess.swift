// Built on Foundation's `Process`, not on swift-subprocess (which `Supervisor` uses), because
// swift-subprocess 1.0.2's `run(…body:)` does not fit what this type must do:
// - it reports the exit status only when `run` returns, that is after `body` returned; and a
//   `body` that reads the output line by line returns only at end of file, which comes when every
//   holder of the pipe has closed it. The children of a supervising consumer (`--processes N`)
//   inherit it, so a consumer killed by SIGKILL would be reported as ended only once its orphaned
//   children were gone too, and a test that waits for a process's exit would wait for the wrong thing;
// - it spawns asynchronously, inside `run`, and the `Execution` (to send signals) exists only within
//   `body`: `ManagedProcess.init` is synchronous (its callers start processes from synchronous
//   code), and would need a task of its own to own the child and a blocking hand-over of the pid.
// `Process` gives both: a termination handler that runs when the child itself ends, and a
// readability handler that delivers the output while it runs; signals go through `kill(2)`.

import ConveyorSystem
public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real child process whose output is read while it runs (line by line, standard output and
/// error together), that can be signalled at any time, waited for with a deadline, and is killed
/// when released.
///
/// Waits come in two forms: `async` ones (``waitForLine(containing:timeout:)-(_,_)async``,
/// ``waitForExit(timeout:)-(_)async``, ``stop(grace:)-(_)async``), which suspend without holding a
/// thread, for async code; and blocking ones of the same names, for threads of their own and
/// synchronous callers only (a `defer`, a signal handler's thread), never from Swift's
/// cooperative pool. In an `async` context the compiler picks the `async` form.
public final class ManagedProcess: Sendable {
    public let name: String
    public let arguments: [String]
    private let process: Process
    /// The exit status, set once by the termination handler.
    private let exitStatus = OneShot<Int32>()
    private let lines = OutputLines()
    /// Whether this process's output is echoed to the parent's standard error (for debugging).
    private let echo: Bool

    /// How long after the process ended its last output may still arrive (the reader delivers it
    /// on a thread of its own); line waiters still waiting then get `nil`.
    private static let lastOutputGrace: Duration = .milliseconds(200)

    /// Starts `executable` with `arguments`.
    public init(name: String, executable: URL, arguments: [String], environment: [String: String]? = nil,
                echoOutput: Bool = ProcessInfo.processInfo.environment["CONVEYOR_TEST_ECHO"] != nil) throws {
        self.name = name
        self.arguments = arguments
        self.echo = echoOutput
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let buffer = Mutex<[UInt8]>([])
        pipe.fileHandleForReading.readabilityHandler = { [lines, echo, name] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                lines.end()
                return
            }
            let complete: [String] = buffer.withLock { pending in
                pending.append(contentsOf: data)
                var out: [String] = []
                while let newline = pending.firstIndex(of: 0x0A) {
                    out.append(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                return out
            }
            guard !complete.isEmpty else { return }
            if echo {
                for line in complete { FileHandle.standardError.write(Data("[\(name)] \(line)\n".utf8)) }
            }
            lines.append(complete)
        }
        process.terminationHandler = { [exitStatus, lines] process in
            exitStatus.set(process.terminationStatus)
            // The pipe may stay open after the exit (children of the process inherit it): end the
            // line waiters once the reader had a moment to deliver what the process wrote last.
            DispatchQueue.global().asyncAfter(deadline: .now() + Self.lastOutputGrace.secondsDouble) {
                lines.end()
            }
        }
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { exitStatus.value == nil }

    /// Everything the process printed so far, line by line.
    public var output: [String] { lines.all }

    /// Sends `signal` (SIGTERM, SIGKILL, SIGSTOP, SIGCONT, ...), unless the process has ended.
    public func send(_ signal: Int32) {
        if isRunning { kill(process.processIdentifier, signal) }
    }

    // MARK: Waiting without blocking

    /// Waits, without blocking a thread, for a line (printed so far or later) for which `matches`
    /// holds, up to `timeout`.
    /// - Returns: the line, or `nil` if none came in time or the output ended first.
    public func waitForLine(timeout: Duration, where matches: @escaping @Sendable (String) -> Bool) async -> String? {
        let (id, found) = lines.addWaiter(matches)
        defer { lines.removeWaiter(id) }
        return await Self.wait(for: found, timeout: timeout)
    }

    /// Waits, without blocking a thread, for a line containing `text`.
    public func waitForLine(containing text: String, timeout: Duration) async -> String? {
        await waitForLine(timeout: timeout) { $0.contains(text) }
    }

    /// Waits, without blocking a thread, up to `timeout` for the process to end.
    /// - Returns: its exit status, or `nil` if it is still running.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Int32? {
        let exited = OneShot<Int32?>()
        exitStatus.whenSet { exited.set($0) }
        return await Self.wait(for: exited, timeout: timeout)
    }

    /// SIGTERM (after SIGCONT, should it be stopped), then SIGKILL if it has not ended within
    /// `grace`; waits without blocking a thread.
    /// - Returns: the exit status.
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) async -> Int32? {
        guard isRunning else { return exitStatus.value }
        send(SIGCONT)
        send(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        send(SIGKILL)
        return await waitForExit(timeout: .seconds(10))
    }

    // MARK: Blocking waits, for threads of their own

    /// Like ``waitForLine(timeout:where:)-(_,_)async``, blocking the calling thread: for threads of
    /// their own and synchronous callers only, never from Swift's cooperative pool.
    public func waitForLine(timeout: Duration, where matches: @escaping @Sendable (String) -> Bool) -> String? {
        let (id, found) = lines.addWaiter(matches)
        defer { lines.removeWaiter(id) }
        return found.waitBlocking(timeout: timeout) ?? nil
    }

    /// Like ``waitForLine(containing:timeout:)-(_,_)async``, blocking the calling thread: for
    /// threads of their own and synchronous callers only.
    public func waitForLine(containing text: String, timeout: Duration) -> String? {
        waitForLine(timeout: timeout) { $0.contains(text) }
    }

    /// Like ``waitForExit(timeout:)-(_)async``, blocking the calling thread: for threads of their
    /// own and synchronous callers only.
    @discardableResult
    public func waitForExit(timeout: Duration) -> Int32? {
        exitStatus.waitBlocking(timeout: timeout)
    }

    /// Like ``stop(grace:)-(_)async``, blocking the calling thread: for threads of their own and
    /// synchronous callers only (`defer { process.stop() }`).
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) -> Int32? {
        guard isRunning else { return exitStatus.value }
        send(SIGCONT)
        send(SIGTERM)
        if let status = waitForExit(timeout: grace) { return status }
        send(SIGKILL)
        return waitForExit(timeout: .seconds(10))
    }

    /// The value of `gate`, or `nil` once `timeout` passed or the waiting task was cancelled: one
    /// timer task, no polling.
    static func wait<Value: Sendable>(for gate: OneShot<Value?>, timeout: Duration) async -> Value? {
        if let value = gate.value { return value }
        let timer = Task {
            do {
                try await Task.sleep(for: timeout)
                gate.set(nil)
            } catch {}
        }
        let value = await withTaskCancellationHandler {
            await gate.wait()
        } onCancel: {
            gate.set(nil)
        }
        timer.cancel()
        return value
    }
}

/// The output of a process so far, and who waits for a line of it; shared with the reader and
/// termination callbacks.
private final class OutputLines: Sendable {
    private struct State: Sendable {
        var all: [String] = []
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        /// No more lines will come: end of file, or a moment after the process ended.
        var ended = false
    }

    private struct Waiter: Sendable {
        let matches: @Sendable (String) -> Bool
        let found: OneShot<String?>
    }

    private let state = Mutex(State())

    var all: [String] { state.withLock { $0.all } }

    /// A waiter for the first line, printed so far or later, that `matches`: its id (for
    /// ``removeWaiter(_:)``) and the latch that gets the line, or `nil` once the output ended.
    func addWaiter(_ matches: @escaping @Sendable (String) -> Bool) -> (Int, OneShot<String?>) {
        let found = OneShot<String?>()
        let (id, ready): (Int, String??) = state.withLock { state in
            let id = state.nextWaiter
            state.nextWaiter += 1
            if let line = state.all.first(where: matches) { return (id, .some(line)) }
            if state.ended { return (id, .some(nil)) }
            state.waiters[id] = Waiter(matches: matches, found: found)
            return (id, nil)
        }
        if let ready { found.set(ready) }
        return (id, found)
    }

    func removeWaiter(_ id: Int) {
        _ = state.withLock { $0.waiters.removeValue(forKey: id) }
    }

    func append(_ new: [String]) {
        let matched: [(OneShot<String?>, String)] = state.withLock { state in
            state.all.append(contentsOf: new)
            var matched: [(OneShot<String?>, String)] = []
            for (id, waiter) in state.waiters {
                if let line = new.first(where: waiter.matches) {
                    matched.append((waiter.found, line))
                    state.waiters[id] = nil
                }
            }
            return matched
        }
        for (found, line) in matched { found.set(line) }
    }

    /// No more lines will come: every waiter still waiting gets `nil`.
    func end() {
        let waiting: [Waiter] = state.withLock { state in
            state.ended = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiting { waiter.found.set(nil) }
    }
}

extension Duration {
    var secondsDouble: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
