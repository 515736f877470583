import ConveyorSystem
public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real child process whose output is read while it runs (line by line, both streams), that can
/// be signalled, waited for with a deadline, and is killed when released.
public final class ManagedProcess: Sendable {
    public let name: String
    public let arguments: [String]
    private let process: Process
    private let shared = Shared()
    private var lineArrived: NSCondition { shared.lineArrived }
    private var exited: DispatchSemaphore { shared.exited }

    /// What the reader and termination callbacks share with the owner.
    private final class Shared: Sendable {
        let lines = Mutex<[String]>([])
        let lineArrived = NSCondition()
        let exited = DispatchSemaphore(value: 0)
        let exitStatus = Mutex<Int32?>(nil)
    }
    /// Whether this process's output is echoed to the parent's standard error (for debugging).
    private let echo: Bool

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
        // A thread of its own reads the output, from a duplicate of the pipe's read end that it
        // alone closes (at end of file). Not `FileHandle.readabilityHandler`: its dispatch source
        // outlived the handle when this object was released before the output ended, and
        // libdispatch then crashed on the closed descriptor (`_dispatch_event_loop_drain`).
        let descriptor = fcntl(pipe.fileHandleForReading.fileDescriptor, F_DUPFD_CLOEXEC, 0)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
        let reader = Thread { [shared, echo, name] in
            Self.readLines(from: descriptor, into: shared, echo: echo, name: name)
        }
        reader.name = "output-\(name)"
        process.terminationHandler = { [shared] process in
            shared.exitStatus.withLock { $0 = process.terminationStatus }
            shared.exited.signal()
            shared.lineArrived.lock()
            shared.lineArrived.broadcast()
            shared.lineArrived.unlock()
        }
        try process.run()
        // The parent's copies of the pipe go; the reader's duplicate stays until end of file.
        try? pipe.fileHandleForReading.close()
        try? pipe.fileHandleForWriting.close()
        reader.start()
    }

    /// Reads `descriptor` to its end, line by line, then closes it.
    private static func readLines(from descriptor: Int32, into shared: Shared, echo: Bool, name: String) {
        defer { close(descriptor) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            pending.append(contentsOf: chunk[0..<count])
            var complete: [String] = []
            while let newline = pending.firstIndex(of: 0x0A) {
                complete.append(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
            guard !complete.isEmpty else { continue }
            if echo {
                for line in complete { FileHandle.standardError.write(Data("[\(name)] \(line)\n".utf8)) }
            }
            shared.lines.withLock { $0.append(contentsOf: complete) }
            shared.lineArrived.lock()
            shared.lineArrived.broadcast()
            shared.lineArrived.unlock()
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { shared.exitStatus.withLock { $0 == nil } }

    /// Everything the process printed so far, line by line.
    public var output: [String] { shared.lines.withLock { $0 } }

    /// Waits for a line for which `matches` holds, up to `timeout`.
    /// - Returns: the line, or `nil` if none came in time or the process ended first.
    public func waitForLine(timeout: Duration, where matches: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout.secondsDouble)
        var seen = 0
        lineArrived.lock()
        defer { lineArrived.unlock() }
        while true {
            let current = shared.lines.withLock { Array($0[seen...]) }
            if let line = current.first(where: matches) { return line }
            seen += current.count
            if Date() >= deadline { return nil }
            if !isRunning && current.isEmpty {
                // Give the reader a moment to deliver the last bytes after exit.
                _ = lineArrived.wait(until: min(deadline, Date().addingTimeInterval(0.2)))
                let last = shared.lines.withLock { Array($0[seen...]) }
                return last.first(where: matches)
            }
            _ = lineArrived.wait(until: min(deadline, Date().addingTimeInterval(0.25)))
        }
    }

    /// Waits for a line containing `text`.
    public func waitForLine(containing text: String, timeout: Duration) -> String? {
        waitForLine(timeout: timeout) { $0.contains(text) }
    }

    /// Sends `signal` (SIGTERM, SIGKILL, SIGSTOP, SIGCONT, ...).
    public func send(_ signal: Int32) {
        if isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits up to `timeout` for the process to end.
    /// - Returns: its exit status, or `nil` if it is still running.
    @discardableResult
    public func waitForExit(timeout: Duration) -> Int32? {
        if exited.wait(timeout: .now() + timeout.secondsDouble) == .timedOut { return nil }
        exited.signal()
        return shared.exitStatus.withLock { $0 }
    }

    /// SIGTERM, then SIGKILL if it has not ended within `grace`.
    /// - Parameter signalled: the caller sent SIGTERM already: send no second one (a second
    ///   SIGTERM asks a consumer to stop at once instead of draining).
    /// - Returns: the exit status.
    @discardableResult
    public func stop(grace: Duration = .seconds(10), signalled: Bool = false) -> Int32? {
        guard isRunning else { return shared.exitStatus.withLock { $0 } }
        if !signalled {
            send(SIGCONT)
            send(SIGTERM)
        }
        if let status = waitForExit(timeout: grace) { return status }
        send(SIGKILL)
        return waitForExit(timeout: .seconds(10))
    }
}

extension Duration {
    var secondsDouble: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
