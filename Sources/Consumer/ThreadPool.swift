import ConveyorProtocol
import ConveyorSystem
import DequeModule
import Foundation

/// Where a job runs: the index of its worker thread in the pool, from 0.
public struct WorkerContext: Sendable {
    public let threadIndex: Int
}

/// A fixed pool of OS threads running submitted work, in the spirit of Python's
/// `concurrent.futures.ThreadPoolExecutor`: ``submit(_:)`` returns a ``Future``.
///
/// Work waits in one first-in first-out queue; each submission wakes one idle thread (no
/// thundering herd). Threads are named `conveyor-w<N>`. ``shutdown(cancelPending:)`` lets running
/// work finish, optionally cancels what has not started, and joins the threads.
public final class ThreadPool: @unchecked Sendable {
    // @unchecked Sendable: `jobs`, `state` and `threadsExited` are only read or written while
    // `condition` is locked; the other stored properties never change after init.
    private let condition = NSCondition()
    private var jobs = Deque<Job>()
    private var state = State.running
    private var threadsExited = 0
    public let threadCount: Int

    private enum State { case running, stopping }

    struct Job {
        let run: @Sendable (WorkerContext) -> Void
        let cancel: @Sendable () -> Void
        /// The task it runs, when it runs one: for ``takePending(id:)``.
        var taskID: String?
    }

    /// Starts `threads` worker threads at once.
    public init(threads: Int, name: String = "conveyor-w") {
        precondition(threads > 0, "a thread pool needs at least one thread")
        threadCount = threads
        for index in 0..<threads {
            // Linux keeps 15 characters of a thread name; Foundation applies a name only when set
            // from the thread itself.
            let threadName = String("\(name)\(index)".prefix(15))
            let thread = Thread { [self] in
                setCurrentThreadName(threadName)
                work(index: index)
            }
            thread.start()
        }
    }

    /// Submits `work`; its ``Future`` tells whether and how it ran.
    @discardableResult
    public func submit<T: Sendable>(_ work: @escaping @Sendable (WorkerContext) throws -> T) -> Future<T> {
        let future = Future<T>()
        let job = Job(
            run: { context in
                guard future.markRunning() else { return }
                future.complete(Result { try work(context) })
            },
            cancel: { _ = future.cancel() })
        enqueue([job])
        return future
    }

    /// Submits jobs that report back by themselves (no future); cheaper for the consumer's hot path.
    func enqueue(_ newJobs: [Job]) {
        condition.lock()
        guard state == .running else {
            condition.unlock()
            newJobs.forEach { $0.cancel() }
            return
        }
        jobs.append(contentsOf: newJobs)
        if newJobs.count == 1 { condition.signal() } else { condition.broadcast() }
        condition.unlock()
    }

    /// Jobs waiting for a thread.
    public var pendingCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count
    }

    /// Stops taking work, cancels what has not started when `cancelPending`, waits for running
    /// work, and joins the threads.
    public func shutdown(cancelPending: Bool = false) {
        condition.lock()
        state = .stopping
        var cancelled: [Job] = []
        if cancelPending {
            cancelled = Array(jobs)
            jobs.removeAll()
        }
        condition.broadcast()
        condition.unlock()
        cancelled.forEach { $0.cancel() }
        condition.lock()
        while threadsExited < threadCount { condition.wait() }
        condition.unlock()
    }

    /// Stops taking work and cancels what has not started, without waiting: each thread exits once
    /// its running job returns (one stuck for good never does). For a consumer that cannot join
    /// its threads (a stuck handler, a drain that timed out).
    func shutdownWithoutJoining() {
        condition.lock()
        state = .stopping
        let cancelled = Array(jobs)
        jobs.removeAll()
        condition.broadcast()
        condition.unlock()
        cancelled.forEach { $0.cancel() }
    }

    /// Removes and returns up to `count` of the jobs that have not started, the last queued first.
    func takePending(atMost count: Int) -> [Job] {
        condition.lock()
        defer { condition.unlock() }
        let taken = Array(jobs.suffix(count))
        jobs.removeLast(taken.count)
        return taken
    }

    /// Removes and returns the job of task `id` if it has not started (REVOKE).
    func takePending(id: String) -> Job? {
        condition.lock()
        defer { condition.unlock() }
        guard let index = jobs.firstIndex(where: { $0.taskID == id }) else { return nil }
        return jobs.remove(at: index)
    }

    /// Removes and returns the jobs that have not started (used when draining).
    func takePending() -> [Job] {
        condition.lock()
        defer { condition.unlock() }
        let taken = Array(jobs)
        jobs.removeAll()
        return taken
    }

    private func work(index: Int) {
        let context = WorkerContext(threadIndex: index)
        while true {
            condition.lock()
            while jobs.isEmpty && state == .running { condition.wait() }
            guard let job = jobs.popFirst() else {
                threadsExited += 1
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.unlock()
            job.run(context)
        }
    }
}
