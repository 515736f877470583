import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The write end of the pipe the signal handler writes to. A file-scope constant-initialized
/// global: reading it in the handler runs no lazy initialization (nothing that is not
/// async-signal-safe).
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// Turns SIGINT and SIGTERM into a callback, run on a thread of its own (not in the signal handler),
/// and SIGHUP into another (``installHangup(_:)``: the broker's "read the clients file again").
///
/// ``start()`` installs a handler at once, first thing in `main`, that only writes the signal's
/// number to a pipe (the self-pipe trick); a thread reads the pipe and calls the handler the
/// command installed. So a signal is never lost or ignored however early it comes, and whichever
/// thread the kernel picks to take it. (A dispatch source, used before, is armed some time after
/// `resume()` returns, and the signal was set to SIG_IGN meanwhile: a SIGTERM right after the broker
/// printed its endpoints could be dropped.) Without a command handler a signal does what it does by
/// default: the process ends.
public enum TerminationSignals {
    private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)
    private static let hangupHandler = Mutex<(@Sendable (Int32) -> Void)?>(nil)

    private static let started = Atomic<Bool>(false)

    /// Installs the signal handler and starts the thread that serves it. Call first in `main`
    /// (``ConveyorServices/run(_:logger:started:)`` calls it too, for apps that did not; a second
    /// call does nothing).
    public static func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        // Not inherited by child processes; a full pipe (the reader stuck) drops a signal rather
        // than blocking the thread the signal interrupted.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        signalPipeWriteEnd = fds[1]
        let readEnd = fds[0]
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number) { number in
                // Only async-signal-safe calls here; errno is the interrupted code's, so keep it.
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteEnd, &byte, 1)
                errno = saved
            }
        }
        let thread = Thread {
            setCurrentThreadName("conveyor-signals")
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }
                let number = Int32(byte)
                let chosen = number == SIGHUP ? hangupHandler.withLock({ $0 }) : handler.withLock({ $0 })
                if let handler = chosen {
                    handler(number)
                } else {
                    // No handler: the default action, which ends the process.
                    signal(number, SIG_DFL)
                    raise(number)
                }
            }
        }
        thread.start()
    }

    /// Calls `handler` with the signal number each time SIGINT or SIGTERM arrives; `nil` goes back
    /// to the default action (the process ends).
    public static func install(_ handler: (@Sendable (Int32) -> Void)?) {
        self.handler.withLock { $0 = handler }
    }

    /// Calls `handler` each time SIGHUP arrives; `nil` goes back to the default action (the
    /// process ends). Call ``start()`` first.
    public static func installHangup(_ handler: (@Sendable (Int32) -> Void)?) {
        hangupHandler.withLock { $0 = handler }
    }
}
