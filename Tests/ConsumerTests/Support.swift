import ConveyorConsumer
import ConveyorSystem
import Foundation

/// How long a test waits for something that should happen promptly. Generous, because the machine
/// may be busy; a wait only takes this long when the test is failing.
let patience: Duration = .seconds(10)

extension Duration {
    var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A gate that blocked jobs wait at until the test opens it. Waits are bounded, so a failing test
/// never leaves a thread blocked for good.
final class Gate: @unchecked Sendable {
    // @unchecked Sendable: `isOpen` is only touched while `condition` is locked.
    private let condition = NSCondition()
    private var isOpen = false

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the gate opens or `timeout` passes; returns whether it opened.
    @discardableResult
    func wait(timeout: Duration = patience) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.timeInterval)
        condition.lock()
        defer { condition.unlock() }
        while !isOpen {
            if !condition.wait(until: deadline) { return isOpen }
        }
        return true
    }
}

/// A counter that threads bump and tests wait on.
final class Counter: @unchecked Sendable {
    // @unchecked Sendable: `count` is only touched while `condition` is locked.
    private let condition = NSCondition()
    private var count = 0

    @discardableResult
    func increment() -> Int {
        condition.lock()
        defer { condition.unlock() }
        count += 1
        condition.broadcast()
        return count
    }

    var value: Int {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    /// Waits until the count reaches `target` or `timeout` passes; returns whether it did.
    @discardableResult
    func wait(untilAtLeast target: Int, timeout: Duration = patience) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.timeInterval)
        condition.lock()
        defer { condition.unlock() }
        while count < target {
            if !condition.wait(until: deadline) { return count >= target }
        }
        return true
    }
}

/// Values collected from several threads.
final class Box<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched while `lock` is held.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    func update<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&stored)
    }
    var value: Value { update { $0 } }
}

/// Runs `body` on a new thread and waits up to `timeout` for it to return; returns whether it did.
/// For calls that block without a timeout of their own (`ThreadPool.shutdown`).
func returnsWithin(_ timeout: Duration = patience, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = Gate()
    let thread = Thread {
        body()
        done.open()
    }
    thread.start()
    return done.wait(timeout: timeout)
}

/// A consumer whose `run()` goes on in a task of its own, as a `ServiceGroup` would run it, for
/// tests that drive a fake broker from the test's thread.
final class RunningConsumer: Sendable {
    let consumer: Consumer
    private let ended = OneShot<Result<Void, any Error>>()

    init(_ consumer: Consumer) {
        self.consumer = consumer
        Task { [ended] in
            do {
                try await consumer.run()
                ended.set(.success(()))
            } catch {
                ended.set(.failure(error))
            }
        }
    }

    func stop() { consumer.stop() }

    /// How `run()` ended, once it has (blocking up to `timeout`); `nil` if it is still running.
    func waitForEnd(timeout: Duration = patience) -> Result<Void, any Error>? {
        ended.waitBlocking(timeout: timeout)
    }
}
