import ConveyorSystem
import Foundation
import Synchronization

/// The two-step interrupt of a command that has work out at the broker (`submit`): the first
/// SIGINT or SIGTERM sets ``first`` and the command winds down (a summary, cancellations); a
/// second one prints what `second` says is left behind and exits at once with status 130.
final class Interruption: Sendable {
    /// Set by the first signal.
    let first = OneShot<Void>()
    private let count = SignalCount()

    /// Signals so far (a class: the handler holds it).
    private final class SignalCount: Sendable {
        let value = Atomic<Int>(0)
    }

    var isInterrupted: Bool { first.value != nil }

    /// Installs the handler until ``end()``.
    init(second: @escaping @Sendable () -> String) {
        TerminationSignals.install { [first, count] _ in
            if count.value.add(1, ordering: .acquiringAndReleasing).newValue == 1 {
                first.set(())
            } else {
                LineWriter.standardOutput.flush()
                printError(second())
                exit(ExitStatus.interrupted)
            }
        }
    }

    /// Back to the default action (the process ends at a signal).
    func end() { TerminationSignals.install(nil) }
}

/// Standard output for many lines: lines are gathered and written at most 20 ms after they were
/// made, or at once when 32 KiB are waiting, one `write(2)` for many lines instead of one each.
/// Writes happen under the lock, so lines come out whole and in the order they were made.
final class LineWriter: Sendable {
    static let standardOutput = LineWriter(handle: .standardOutput)

    private let handle: FileHandle
    private let buffer = Mutex<[UInt8]>([])
    private let flusher = Atomic<Bool>(false)

    private init(handle: FileHandle) { self.handle = handle }

    func write(_ line: String) {
        startFlusher()
        buffer.withLock { bytes in
            bytes.append(contentsOf: line.utf8)
            bytes.append(0x0A)
            if bytes.count >= 32_768 { drain(&bytes) }
        }
    }

    /// Appends what `body` writes (one or more whole lines, newlines included).
    func write(_ body: (inout [UInt8]) -> Void) {
        startFlusher()
        buffer.withLock { bytes in
            body(&bytes)
            if bytes.count >= 32_768 { drain(&bytes) }
        }
    }

    func flush() {
        buffer.withLock { drain(&$0) }
    }

    private func drain(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        handle.write(Data(bytes))
        bytes.removeAll(keepingCapacity: true)
    }

    private func startFlusher() {
        guard !flusher.load(ordering: .relaxed), !flusher.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Thread.detachNewThread { [self] in
            setCurrentThreadName("conveyor-output")
            while true {
                Thread.sleep(forTimeInterval: 0.02)
                flush()
            }
        }
    }
}
