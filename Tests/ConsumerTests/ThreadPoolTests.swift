@testable import ConveyorConsumer
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The calling thread's name as the OS knows it (what `top -H`, `gdb` and crash reports show).
func osThreadName() -> String {
    let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return comm.trimmingCharacters(in: .newlines)
}

@Suite("Thread pool and futures")
struct ThreadPoolTests {
    struct Boom: Error, Equatable { let code: Int }

    /// Fills every thread of `pool` with a job blocked at `gate`, and waits until all have started.
    func occupyAllThreads(of pool: ThreadPool, at gate: Gate) -> [Future<Int>] {
        let started = Counter()
        let blockers = (0..<pool.threadCount).map { index in
            pool.submit { _ -> Int in
                started.increment()
                gate.wait()
                return index
            }
        }
        #expect(started.wait(untilAtLeast: pool.threadCount), "the blocking jobs did not all start")
        return blockers
    }

    @Test("submit returns futures holding each job's result")
    func submitReturnsResults() throws {
        let pool = ThreadPool(threads: 3)
        defer { pool.shutdown() }
        let futures = (0..<20).map { n in pool.submit { _ in n * n } }
        for (n, future) in futures.enumerated() {
            #expect(try future.result(timeout: patience) == n * n)
            #expect(future.isDone)
            #expect(!future.isRunning)
            #expect(!future.isCancelled)
        }
    }

    @Test("N jobs that wait for each other all run at once, on N distinct worker threads")
    func runsNJobsAtOnceOnDistinctThreads() throws {
        let threads = 4
        let pool = ThreadPool(threads: threads)
        defer { pool.shutdown() }
        let arrived = Counter()
        struct Sighting: Sendable { let index: Int; let thread: UInt; let name: String; let metAll: Bool }
        let futures = (0..<threads).map { _ in
            pool.submit { context -> Sighting in
                arrived.increment()
                // The rendezvous: nobody leaves until all N have arrived, which needs N threads.
                let metAll = arrived.wait(untilAtLeast: threads)
                return Sighting(index: context.threadIndex, thread: UInt(pthread_self()),
                                name: osThreadName(), metAll: metAll)
            }
        }
        let sightings = try futures.map { try $0.result(timeout: patience) }
        #expect(sightings.allSatisfy { $0.metAll }, "not all \(threads) jobs ran at the same time")
        #expect(Set(sightings.map(\.index)) == Set(0..<threads))
        #expect(Set(sightings.map(\.thread)).count == threads)
    }

    @Test("Worker threads carry the names conveyor-w0 … conveyor-w<N-1> in the OS")
    func workerThreadNames() throws {
        let pool = ThreadPool(threads: 2)
        defer { pool.shutdown() }
        let arrived = Counter()
        let futures = (0..<2).map { _ in
            pool.submit { context -> (Int, String) in
                arrived.increment()
                arrived.wait(untilAtLeast: 2)
                return (context.threadIndex, osThreadName())
            }
        }
        let names = try futures.map { try $0.result(timeout: patience) }
        do {
            for (index, name) in names {
                #expect(name == "conveyor-w\(index)")
            }
        }
    }

    @Test("Work never runs on more threads than the pool has")
    func neverMoreThanNThreads() throws {
        let pool = ThreadPool(threads: 2)
        defer { pool.shutdown() }
        let futures = (0..<50).map { _ in
            pool.submit { context in (context.threadIndex, UInt(pthread_self())) }
        }
        let seen = try futures.map { try $0.result(timeout: patience) }
        #expect(Set(seen.map(\.0)).isSubset(of: [0, 1]))
        #expect(Set(seen.map(\.1)).count <= 2)
    }

    @Test("cancel() before the work starts returns true and the work never runs")
    func cancelBeforeStart() throws {
        let pool = ThreadPool(threads: 2)
        let gate = Gate()
        let blockers = occupyAllThreads(of: pool, at: gate)
        let ran = Counter()
        let queued = pool.submit { _ -> Int in
            ran.increment()
            return 1
        }
        #expect(pool.pendingCount == 1)
        #expect(!queued.isRunning)
        #expect(queued.cancel())
        #expect(queued.isCancelled)
        #expect(queued.isDone)
        #expect(queued.cancel(), "cancelling again still reports the future cancelled")
        #expect(throws: FutureError.cancelled) { try queued.result(timeout: .zero) }

        gate.open()
        for (index, blocker) in blockers.enumerated() {
            #expect(try blocker.result(timeout: patience) == index)
        }
        // shutdown() without cancelling runs every queued job; the cancelled one must do nothing.
        #expect(returnsWithin { pool.shutdown() })
        #expect(pool.pendingCount == 0)
        #expect(ran.value == 0)
        #expect(queued.isCancelled)
    }

    @Test("cancel() racing a worker that picks the job up: when cancel() returns true the work never runs")
    func cancelRacingAWorker() throws {
        let pool = ThreadPool(threads: 2)
        let count = 100_000
        let ran = Box([Bool](repeating: false, count: count))
        var cancelReturnedTrue = [Bool](repeating: false, count: count)
        var futures: [Future<Int>] = []
        futures.reserveCapacity(count)
        for index in 0..<count {
            let future = pool.submit { _ -> Int in
                ran.update { $0[index] = true }
                return index
            }
            cancelReturnedTrue[index] = future.cancel()
            futures.append(future)
        }
        #expect(returnsWithin { pool.shutdown() })
        let ranNow = ran.value
        let violations = (0..<count).filter { cancelReturnedTrue[$0] && (ranNow[$0] || !futures[$0].isCancelled) }
        // Every future either ran or was cancelled, never neither.
        #expect((0..<count).allSatisfy { ranNow[$0] || futures[$0].isCancelled })
        do {
            let violationCount = violations.count
            #expect(violationCount == 0, "cancel() returned true but the work ran or the future holds its value; first: \(violations.prefix(5))")
        }
    }

    @Test("cancel() of a running future returns false and the work finishes normally")
    func cancelWhileRunning() throws {
        let pool = ThreadPool(threads: 1)
        defer { pool.shutdown() }
        let gate = Gate()
        let started = Counter()
        let future = pool.submit { _ -> String in
            started.increment()
            gate.wait()
            return "finished"
        }
        defer { gate.open() }
        #expect(started.wait(untilAtLeast: 1))
        #expect(future.isRunning)
        #expect(!future.cancel())
        #expect(!future.isCancelled)
        gate.open()
        #expect(try future.result(timeout: patience) == "finished")
        #expect(!future.cancel(), "a finished future cannot be cancelled either")
        #expect(try future.result() == "finished")
    }

    @Test("result(timeout:) throws timedOut while the work is blocked and returns the value once it finishes")
    func resultTimeout() throws {
        let pool = ThreadPool(threads: 1)
        defer { pool.shutdown() }
        let gate = Gate()
        defer { gate.open() }
        let future = pool.submit { _ -> Int in
            gate.wait()
            return 42
        }
        #expect(throws: FutureError.timedOut) { try future.result(timeout: .milliseconds(50)) }
        #expect(throws: FutureError.timedOut) { try future.result(timeout: .zero) }
        #expect(!future.isDone)
        gate.open()
        #expect(try future.result(timeout: patience) == 42)
        #expect(try future.result(timeout: .zero) == 42, "a finished future answers at once")
    }

    @Test("An error thrown by the work comes out of result(), value and whenDone")
    func errorPropagates() async throws {
        let pool = ThreadPool(threads: 1)
        defer { pool.shutdown() }
        let future = pool.submit { _ -> Int in throw Boom(code: 7) }
        #expect(throws: Boom(code: 7)) { try future.result(timeout: patience) }
        await #expect(throws: Boom(code: 7)) { try await future.value }
        let seen = Box<Result<Int, any Error>?>(nil)
        future.whenDone { result in seen.update { $0 = result } }
        #expect(throws: Boom(code: 7)) { try seen.value?.get() }
        #expect(future.isDone)
        #expect(!future.isCancelled)
    }

    @Test("whenDone fires exactly once per callback, whether added before or after completion")
    func whenDoneFiresOnce() throws {
        let pool = ThreadPool(threads: 1)
        let gate = Gate()
        defer { gate.open() }
        let future = pool.submit { _ -> Int in
            gate.wait()
            return 5
        }
        let early = Counter()
        let earlyValues = Box<[Int]>([])
        future.whenDone { result in
            earlyValues.update { $0.append((try? result.get()) ?? -1) }
            early.increment()
        }
        #expect(early.value == 0)
        gate.open()
        #expect(early.wait(untilAtLeast: 1))
        let late = Counter()
        future.whenDone { _ in late.increment() }
        #expect(late.value == 1, "a callback added after completion runs at once")
        _ = future.cancel()
        // Callbacks run on the worker thread inside complete(); once the threads are joined
        // nothing can call them again.
        #expect(returnsWithin { pool.shutdown() })
        #expect(early.value == 1)
        #expect(late.value == 1)
        #expect(earlyValues.value == [5])
    }

    @Test("value awaits the result without blocking a thread")
    func asyncValue() async throws {
        let pool = ThreadPool(threads: 2)
        defer { pool.shutdown() }
        let gate = Gate()
        defer { gate.open() }
        let future = pool.submit { _ -> [String] in
            gate.wait()
            return ["a", "b"]
        }
        async let awaited = future.value
        gate.open()
        #expect(try await awaited == ["a", "b"])
        // And on an already finished future.
        #expect(try await future.value == ["a", "b"])
    }

    @Test("value of a cancelled future throws FutureError.cancelled")
    func asyncValueOfCancelled() async throws {
        let pool = ThreadPool(threads: 1)
        defer { pool.shutdown() }
        let gate = Gate()
        defer { gate.open() }
        let blockers = occupyAllThreads(of: pool, at: gate)
        let queued = pool.submit { _ in 1 }
        #expect(queued.cancel())
        await #expect(throws: FutureError.cancelled) { try await queued.value }
        gate.open()
        _ = try blockers[0].result(timeout: patience)
    }

    @Test("shutdown(cancelPending: true) cancels queued work, lets running work finish and joins the threads")
    func shutdownCancelsPending() throws {
        let pool = ThreadPool(threads: 2)
        let gate = Gate()
        defer { gate.open() }
        let blockers = occupyAllThreads(of: pool, at: gate)
        let ran = Counter()
        let queued = (0..<5).map { _ in pool.submit { _ -> Int in ran.increment() } }
        #expect(pool.pendingCount == 5)

        let shutDown = Gate()
        Thread {
            pool.shutdown(cancelPending: true)
            shutDown.open()
        }.start()
        // The queued futures are cancelled before shutdown waits for the running jobs.
        for future in queued {
            #expect(throws: FutureError.cancelled) { try future.result(timeout: patience) }
            #expect(future.isCancelled)
        }
        #expect(pool.pendingCount == 0)
        #expect(!shutDown.wait(timeout: .zero), "shutdown returned while jobs were still running")
        gate.open()
        #expect(shutDown.wait(), "shutdown did not join the threads")
        for (index, blocker) in blockers.enumerated() {
            #expect(try blocker.result(timeout: .zero) == index)
        }
        #expect(ran.value == 0)
    }

    @Test("shutdown() without cancelPending runs the queued work before the threads exit")
    func shutdownRunsPending() throws {
        let pool = ThreadPool(threads: 1)
        let gate = Gate()
        defer { gate.open() }
        let blockers = occupyAllThreads(of: pool, at: gate)
        let queued = (0..<3).map { n in pool.submit { _ in n } }
        let shutDown = Gate()
        Thread {
            pool.shutdown()
            shutDown.open()
        }.start()
        gate.open()
        #expect(shutDown.wait())
        #expect(try blockers[0].result(timeout: .zero) == 0)
        #expect(try queued.map { try $0.result(timeout: .zero) } == [0, 1, 2])
    }

    @Test("Work submitted after shutdown is cancelled at once and never runs")
    func submitAfterShutdown() throws {
        let pool = ThreadPool(threads: 2)
        #expect(returnsWithin { pool.shutdown() })
        let ran = Counter()
        let future = pool.submit { _ -> Int in ran.increment() }
        #expect(future.isCancelled)
        #expect(future.isDone)
        #expect(throws: FutureError.cancelled) { try future.result(timeout: .zero) }
        #expect(ran.value == 0)
        #expect(pool.pendingCount == 0)
        #expect(returnsWithin { pool.shutdown() }, "a second shutdown returns too")
    }

    @Test("FutureError descriptions say what happened")
    func futureErrorDescriptions() {
        #expect(FutureError.cancelled.description.contains("cancelled"))
        #expect(FutureError.timedOut.description.contains("timeout"))
    }
}
