import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The progress line of a batch on a terminal's standard error, redrawn five times a second:
/// a bar when the total is known (a file), answers, failures as they happen, rate and ETA, cut to
/// the terminal's width (read at every redraw, so a resized terminal gets a line that fits).
final class BatchProgress: Sendable {
    private let state: BatchState
    private let started: ContinuousClock.Instant
    private let running = Atomic<Bool>(false)

    init(state: BatchState, started: ContinuousClock.Instant) {
        self.state = state
        self.started = started
    }

    func start() {
        running.store(true, ordering: .relaxed)
        Thread.detachNewThread { [self] in
            while running.load(ordering: .relaxed) {
                draw()
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

    func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        let done = state.tally.answered
        let failed = state.tally.failed
        let elapsed = started.duration(to: .now).seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var counts = "\(done)"
        if let total = state.total { counts += "/\(total)" }
        var tail = "  \(String(format: "%.0f", rate)) tasks/s"
        if failed > 0 { tail += "  \(failed) failed" }
        if let total = state.total, rate > 0 { tail += String(format: "  ETA %.1f s", Double(total - done) / rate) }
        let columns = Self.terminalColumns()
        var text = counts + tail
        if let total = state.total {
            // "[####----] " takes what the numbers leave, 10 to 40 characters of bar.
            let width = min(40, columns - text.count - 4)
            if width >= 10 {
                let filled = total > 0 ? width * min(done, total) / total : width
                text = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] " + text
            }
        }
        if text.count > columns - 1 { text = String(text.prefix(max(1, columns - 1))) }
        // \r, the line, then clear to the end of the line (a shorter line leaves nothing behind).
        FileHandle.standardError.write(Data(("\r" + text + "\u{1B}[K").utf8))
    }

    /// The width of the terminal on standard error; 80 when it cannot be read.
    static func terminalColumns() -> Int {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}
