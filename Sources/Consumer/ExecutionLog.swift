#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConveyorProtocol

/// `conveyor consumer --execution-log FILE`: one JSON line per task a handler starts (id, name,
/// attempt, pid, thread), appended to FILE. An audit of what ran where: with at-least-once
/// execution a task may appear more than once (a consumer lost mid-task, a broker crash before a
/// result was journaled), and the crash tests count exactly that.
///
/// Several threads and processes may share the file: each line is one `write(2)` to a file opened
/// with `O_APPEND`, which the kernel appends whole.
public final class ExecutionLog: Sendable {
    private let descriptor: Int32

    public init(path: String) throws(ExecutionLogError) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ExecutionLogError(path: path, code: errno) }
    }

    deinit { close(descriptor) }

    func record(id: String, name: String, attempt: UInt32, pid: Int32, thread: Int) {
        var line = #"{"id":\#(JSONText.quoted(id)),"name":\#(JSONText.quoted(name)),"attempt":\#(attempt),"pid":\#(pid),"thread":\#(thread)}"#
        line += "\n"
        line.withUTF8 { _ = write(descriptor, $0.baseAddress, $0.count) }
    }
}

public struct ExecutionLogError: Error, CustomStringConvertible {
    public let path: String
    public let code: Int32
    public var description: String { "cannot open the execution log \(path): \(String(cString: strerror(code)))" }
}
