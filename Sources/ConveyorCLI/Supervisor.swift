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
        for index in 0..<count { try spawn(index) }
        while true {
            changed.wait()
            let (stopping, running) = state.withLock { ($0.stopping, $0.children.count) }
            if stopping && running == 0 { break }
        }
        logger.info("supervisor stopped")
    }

    private func spawn(_ index: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments + ["--process-index", "\(index)"]
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [self] process in exited(index, status: process.terminationStatus) }
        try process.run()
        state.withLock {
            $0.children[index] = process
            $0.startedAt[index] = Date()
        }
        logger.info("consumer process started", metadata: ["process": "\(index)", "consumer.pid": "\(process.processIdentifier)"])
    }

    private func exited(_ index: Int, status: Int32) {
        let (stopping, delay) = state.withLock { state -> (Bool, Double) in
            state.children[index] = nil
            let lived = Date().timeIntervalSince(state.startedAt[index] ?? Date())
            var delay = lived > 60 ? 1 : (state.backoff[index] ?? 0.5) * 2
            delay = min(delay, 30)
            state.backoff[index] = delay
            return (state.stopping, delay)
        }
        if stopping {
            changed.signal()
            return
        }
        logger.warning("consumer process died; restarting", metadata: [
            "process": "\(index)", "status": "\(status)", "restart.in": "\(delay)s",
        ])
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            guard !state.withLock({ $0.stopping }) else { return }
            do {
                try spawn(index)
            } catch {
                logger.error("could not restart consumer process", metadata: ["process": "\(index)", "error": "\(error)"])
            }
        }
    }
}
