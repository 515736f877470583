import ArgumentParser
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The lines of `submit --input`, one task's args each, read as they are needed.
///
/// A regular file is read at once (its line count drives the progress bar's total and ETA).
/// Anything else (standard input from a pipe, a terminal, a FIFO) is streamed: a reader thread
/// reads 64 KiB at a time and stays at most four chunks ahead of the submitter, so
/// `tail -f events.ndjson | conveyor submit handle --input -` runs with bounded memory and
/// submits each line as soon as it arrives.
///
/// Line numbers count every line of the input; blank lines (empty, or only spaces, tabs and a
/// `\r`) make no task, no output line and no count, but keep their number, so `index` in the output
/// is always the line's position (from 0) in the input.
final class BatchInput {
    /// One line that makes a task: its position in the input (from 0) and its bytes.
    struct Line {
        let index: Int
        let text: Substring
    }

    /// Lines with a task in them, when known up front (a regular file); `nil` for a stream.
    let total: Int?
    /// The line number after the last line read so far.
    private(set) var linesRead = 0
    /// Whether every line was read.
    private(set) var finished = false

    private var pending: [Line] = []
    private var pendingStart = 0
    private let stream: ChunkStream?
    private var chunks: AsyncStream<[UInt8]>.Iterator?
    private var carry: [UInt8] = []

    /// Opens `path` (`-` for standard input).
    init(path: String) throws {
        let fd: Int32
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                printError("error: cannot read --input file '\(path)': \(String(cString: strerror(errno)))")
                throw ExitCode.failure
            }
        }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: fd != 0)
            let data = (try? handle.readToEnd()) ?? Data()
            let text = Substring(String(decoding: data, as: UTF8.self))
            stream = nil
            pending = Self.split(text, from: 0, count: &linesRead)
            total = pending.count
            finished = true
        } else {
            let stream = ChunkStream(fd: fd)
            self.stream = stream
            chunks = stream.chunks.makeAsyncIterator()
            total = nil
        }
    }

    /// The next lines with a task in them, at most `limit`; empty once the input is finished.
    /// Waits for a stream's next chunk only when none of its lines are left.
    func next(atMost limit: Int) async -> [Line] {
        while pendingStart == pending.count, !finished {
            await readChunk()
        }
        let end = min(pending.count, pendingStart + limit)
        let lines = Array(pending[pendingStart..<end])
        pendingStart = end
        if pendingStart == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
        }
        return lines
    }

    private func readChunk() async {
        let chunk = await chunks?.next()
        if chunk != nil { stream?.consumed() }
        guard let chunk else {
            // The end: a last line without a newline is a line too.
            if !carry.isEmpty {
                let text = Substring(String(decoding: carry, as: UTF8.self))
                carry = []
                pending += Self.split(text, from: linesRead, count: &linesRead)
            }
            finished = true
            return
        }
        guard let lastNewline = chunk.lastIndex(of: UInt8(ascii: "\n")) else {
            carry += chunk
            return
        }
        var bytes = carry
        bytes += chunk[...lastNewline]
        carry = Array(chunk[(lastNewline + 1)...])
        let text = Substring(String(decoding: bytes, as: UTF8.self))
        pending += Self.split(text, from: linesRead, count: &linesRead)
    }

    /// The lines of `text` that are not blank, numbered from `first`; `count` ends past the last
    /// line. A final newline does not make an extra line.
    static func split(_ text: Substring, from first: Int, count: inout Int) -> [Line] {
        var lines: [Line] = []
        var index = first
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        if parts.last?.isEmpty == true { parts.removeLast() }
        lines.reserveCapacity(parts.count)
        for part in parts {
            if !isBlank(part) { lines.append(Line(index: index, text: part)) }
            index += 1
        }
        count = index
        return lines
    }

    /// Empty, or only spaces, tabs and carriage returns.
    static func isBlank(_ line: Substring) -> Bool {
        line.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }
}

/// Chunks read from a file descriptor by a thread of its own, at most four ahead of the reader,
/// so a blocking `read(2)` (a pipe that has nothing yet) never holds one of Swift's cooperative
/// threads. The thread ends at the end of input or on a read error.
private final class ChunkStream: Sendable {
    let chunks: AsyncStream<[UInt8]>
    // Made at 0 and raised to 4: libdispatch traps when a semaphore is freed below the value it
    // was made with, which this one is while the thread waits.
    private let space = DispatchSemaphore(value: 0)

    init(fd: Int32) {
        for _ in 0..<4 { space.signal() }
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        chunks = stream
        let space = self.space
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                space.wait()
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR {
                    space.signal()
                    continue
                }
                guard count > 0 else { break }
                continuation.yield(Array(buffer[0..<count]))
            }
            continuation.finish()
        }
        thread.start()
    }

    /// Call once for every chunk taken from ``chunks``: the thread may read one more.
    func consumed() { space.signal() }
}
