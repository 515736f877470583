#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A broker's data directory: the lock, the journal's segments and snapshots, and the file that
/// says what was last made durable.
///
/// ```
/// DIR/lock                            flock(2)-ed by the broker using it; says who that is
/// DIR/segment-0000000007.journal      records, in order; the newest one is being written
/// DIR/snapshot-0000000006.journal     the state after segments ≤ 6 (written by compaction)
/// DIR/snapshot-0000000006.tmp         a snapshot being written (removed at start)
/// DIR/segment-0000000008.tmp          a segment being created (renamed once its header is synced)
/// DIR/journal.synced                  "segment N offset X": the end of the durable data
/// ```
public final class DataDirectory: Sendable {
    public let path: String
    private let lockDescriptor: Int32
    private let unlocked = Atomic<Bool>(false)

    /// Opens (creating it when missing) and locks `path` for one broker. The lock is an `flock`
    /// held by this process: the kernel drops it when the process dies, so a restart after
    /// `kill -9` needs no cleanup. Another broker gets ``JournalError/inUse(_:)`` naming the holder.
    public init(path: String) throws(JournalError) {
        self.path = path
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .lastSystem("cannot create data directory \(path)") }
        let lockPath = path + "/lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .lastSystem("cannot open \(lockPath)") }
        // A broker killed a moment ago holds the lock until the kernel has finished it off: a
        // restart right after a kill -9 waits a little for it rather than fail.
        var waited = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0, errno == EWOULDBLOCK, waited < Self.lockPatienceMilliseconds {
            usleep(50_000)
            waited += 50
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw .inUse("data directory \(path) is in use by another broker (\(holder.isEmpty ? "holder unknown" : holder)); stop that broker or give this one another --data-dir")
        }
        let note = "pid \(getpid()), started \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(descriptor, 0)
        _ = note.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        lockDescriptor = descriptor
    }

    /// How long opening waits for a lock another process holds before it says so.
    static let lockPatienceMilliseconds = 2_000

    deinit { unlock() }

    /// Lets the directory go (once): another broker may open it from now on.
    public func unlock() {
        guard !unlocked.exchange(true, ordering: .acquiringAndReleasing) else { return }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    // MARK: Files

    public func segmentPath(_ number: UInt64) -> String { Self.segmentPath(in: path, number) }
    public func snapshotPath(_ number: UInt64) -> String { Self.snapshotPath(in: path, number) }

    static func segmentPath(in directory: String, _ number: UInt64) -> String {
        directory + "/segment-" + padded(number) + ".journal"
    }

    static func snapshotPath(in directory: String, _ number: UInt64) -> String {
        directory + "/snapshot-" + padded(number) + ".journal"
    }

    static var syncedName: String { "journal.synced" }

    private static func padded(_ number: UInt64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }

    /// The journal files in `directory`, each kind in increasing number.
    public static func listing(_ directory: String) throws(JournalError) -> JournalFiles {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .system("cannot list \(directory)", errno: ENOENT)
        }
        var files = JournalFiles()
        for name in names {
            if let number = number(of: name, prefix: "segment-", suffix: ".journal") {
                files.segments.append(number)
            } else if let number = number(of: name, prefix: "snapshot-", suffix: ".journal") {
                files.snapshots.append(number)
            } else if name.hasPrefix("snapshot-") || name.hasPrefix("segment-"), name.hasSuffix(".tmp") {
                files.temporary.append(directory + "/" + name)
            }
        }
        files.segments.sort()
        files.snapshots.sort()
        return files
    }

    private static func number(of name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    /// Where a journal file is prepared before it is renamed to `path` (`.journal` → `.tmp`).
    static func stagingPath(for path: String) -> String {
        path.hasSuffix(".journal") ? String(path.dropLast(".journal".count)) + ".tmp" : path + ".tmp"
    }

    /// Makes the directory's entries (created, renamed, removed files) durable.
    static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }
}

/// The journal files of a data directory.
public struct JournalFiles: Sendable {
    public var segments: [UInt64] = []
    public var snapshots: [UInt64] = []
    /// Snapshots and segments left half-written by a crash.
    public var temporary: [String] = []
}
