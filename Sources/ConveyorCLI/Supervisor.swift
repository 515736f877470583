import ConveyorSystem
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs `count` child consumer processes of this same executable and keeps them running:
/// a child that dies is restarted after a backoff (1 s, doubling to 30 s; reset once a child has
/// run for a minute). ``stop()`` asks every child to drain (SIGTERM) and waits for them.
final class Supervisor: Sendable {
    private let count: Int
    private let arguments: [String]
    private let logger: Logger
    private let state = Mutex(State())
    private let changed = DispatchSemaphore(value: 0)

    private struct State {
        var children: [Int: Process] = [:]
        var startedAt: [Int: Date] = [:]
        var backoff: [Int: Double] = [:]
        var stopping = false
    }

    init(count: Int, arguments: [String], logger: Logger) {
        self.count = count
        self.arguments = arguments
        self.logger = logger
    }

    func stop() {
        let children = state.withLock { state -> [Process] in
            state.stopping = true
            return Array(state.children.values)
        }
        logger.info("supervisor stopping; children draining", metadata: ["children": "\(children.count)"])
        for child in children where child.isRunning { kill(child.processIdentifier, SIGTERM) }
        changed.signal()
    }

    func run() throws {
        for index in 0..<count { spawn(index) }
        while true {
            changed.wait()
            let (stopping, running) = state.withLock { ($0.stopping, $0.children.count) }
            if stopping && running == 0 { break }
        }
        logger.info("supervisor stopped")
    }

    /// Starts child `index`, unless the supervisor is stopping. The child is registered before it
    /// runs, under the same lock as the stopping flag, so that stop() always sees it.
    private func spawn(_ index: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments + ["--process-index", "\(index)"]
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [self] process in exited(index, process: process) }
        let registered = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.children[index] = process
            state.startedAt[index] = Date()
            return true
        }
        guard registered else { return }
        do {
            try process.run()
        } catch {
            state.withLock { if $0.children[index] === process { $0.children[index] = nil } }
            logger.error("could not start consumer process", metadata: ["process": "\(index)", "error": "\(error)"])
            scheduleRestart(index)
            return
        }
        // stop() may have run between registering and starting: it could not signal a process
        // that had not started yet.
        if state.withLock({ $0.stopping }) { kill(process.processIdentifier, SIGTERM) }
        logger.info("consumer process started", metadata: ["process": "\(index)", "consumer.pid": "\(process.processIdentifier)"])
    }

    private func exited(_ index: Int, process: Process) {
        let stopping = state.withLock { state -> Bool in
            if state.children[index] === process { state.children[index] = nil }
            return state.stopping
        }
        if stopping {
            changed.signal()
            return
        }
        logger.warning("consumer process died; restarting", metadata: [
            "process": "\(index)", "status": "\(process.terminationStatus)",
        ])
        scheduleRestart(index)
    }

    /// Restarts child `index` after a backoff: 1 s, doubling to 30 s; back to 1 s once a child has
    /// lived a minute.
    private func scheduleRestart(_ index: Int) {
        let delay = state.withLock { state -> Double in
            let lived = Date().timeIntervalSince(state.startedAt[index] ?? Date())
            let delay = lived > 60 ? 1 : min((state.backoff[index] ?? 0.5) * 2, 30)
            state.backoff[index] = delay
            return delay
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in spawn(index) }
    }
}
