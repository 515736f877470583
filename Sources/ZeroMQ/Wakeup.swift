#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Wakes a thread blocked in `zmq_poll` (``Poller``) from other threads: a non-blocking pipe whose
/// read end the poller watches (`poller.add(fileDescriptor: wakeup.readDescriptor)`). At most one byte is pending at a time, so a burst of completions costs one
/// wake-up.
public final class Wakeup: Sendable {
    public let readDescriptor: Int32
    private let writeDescriptor: Int32
    private let pending = Atomic<Bool>(false)
    private let waiting = Atomic<Bool>(false)

    public init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("pipe() failed: errno \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        readDescriptor = fds[0]
        writeDescriptor = fds[1]
    }

    deinit {
        close(readDescriptor)
        close(writeDescriptor)
    }

    /// Wakes the poller unless a wake-up is already pending.
    public func signal() {
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }

    /// For a waker that only needs to wake the thread when it sleeps (``signalIfWaiting()``): the
    /// thread calls this before it looks for work one last time and polls, and ``endWait()`` after.
    /// Sequentially consistent on both sides, so that either the thread sees the waker's work or
    /// the waker sees the thread waiting.
    public func beginWait() { waiting.store(true, ordering: .sequentiallyConsistent) }

    public func endWait() { waiting.store(false, ordering: .relaxed) }

    /// ``signal()``, but only while the thread is between ``beginWait()`` and ``endWait()``: a
    /// busy thread looks for the work by itself at the end of its turn, without two system calls.
    public func signalIfWaiting() {
        guard waiting.load(ordering: .sequentiallyConsistent) else { return }
        signal()
    }

    /// Called by the woken thread before it looks at what it was woken for.
    public func reset() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readDescriptor, &buffer, buffer.count) > 0 {}
        pending.store(false, ordering: .releasing)
    }
}
