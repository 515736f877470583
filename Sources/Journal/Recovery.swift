#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a replay of a data directory found.
public struct RecoveryReport: Sendable {
    /// The snapshot replayed first, if any.
    public var snapshot: UInt64?
    /// The segments replayed after it.
    public var segments: [UInt64] = []
    public var records = 0
    /// Files the replay read, with what each held.
    public var files: [ScannedFile] = []
    /// Torn tails dropped, and damage skipped, in words for the log.
    public var dropped: [String] = []
    /// The bytes of data in every file read (up to each one's last complete record).
    public var bytes = 0
    /// Records of unknown skippable types.
    public var skipped = 0
    /// A newest segment that was created but never got its header (a crash while an older
    /// version created it in place): it holds nothing, and the journal removes it.
    public var unwritten: [String] = []

    /// The newest segment number, or the snapshot's when no segment follows it.
    public var lastNumber: UInt64 { segments.last ?? snapshot ?? 0 }
}

public enum JournalReplay {
    /// Replays the newest snapshot of `directory` and every segment after it (up to `through`,
    /// when given) into a ``RecoveredState``.
    ///
    /// A torn tail is dropped (and reported) only in the newest segment, where a crash leaves it.
    /// Damage anywhere else, or damage with valid records after it, throws ``JournalError/corrupt(_:)``
    /// naming the file and offset, unless `repair`, which skips the damaged bytes and reports them.
    public static func replay(_ directory: String, through last: UInt64? = nil, repair: Bool = false,
                              deadLetterCapacity: Int = .max) throws(JournalError) -> (RecoveredState, RecoveryReport) {
        // A live broker's compaction may remove files between the listing and the reading: then
        // a newer snapshot holds what they held, and reading again finds it.
        var attempt = 0
        while true {
            do throws(JournalError) {
                return try replayOnce(directory, through: last, repair: repair, deadLetterCapacity: deadLetterCapacity)
            } catch {
                attempt += 1
                guard case .system(_, let code) = error, code == ENOENT, attempt < 5 else { throw error }
            }
        }
    }

    private static func replayOnce(_ directory: String, through last: UInt64?, repair: Bool,
                                   deadLetterCapacity: Int) throws(JournalError) -> (RecoveredState, RecoveryReport) {
        let files = try DataDirectory.listing(directory)
        var state = RecoveredState(deadLetterCapacity: deadLetterCapacity)
        var report = RecoveryReport()
        let snapshot = files.snapshots.last(where: { last == nil || $0 <= last! })
        if let snapshot {
            let path = DataDirectory.snapshotPath(in: directory, snapshot)
            let scanned = try SegmentReader.scan(path: path, skipDamage: repair) { located throws(JournalError) in
                state.apply(located.record)
            }
            if let problem = scanned.problems.first, !repair {
                throw .corrupt("\(path): \(describe(problem)); a snapshot is written whole, so this is damage. Restore the data directory from a backup, or start with --journal-repair to keep every readable record")
            }
            report.dropped += scanned.problems.map { "\(path): \(describe($0))" }
            report.snapshot = snapshot
            report.note(scanned)
        }
        let segments = files.segments.filter { $0 > (snapshot ?? 0) && (last == nil || $0 <= last!) }
        var expected = segments.first
        for (index, number) in segments.enumerated() {
            let path = DataDirectory.segmentPath(in: directory, number)
            if let expected, number != expected, !repair {
                throw .corrupt("\(DataDirectory.segmentPath(in: directory, expected)) is missing: segments \(expected)-\(number - 1) are gone, and with them the records they held. Restore them from a backup, or start with --journal-repair to go on without them")
            }
            expected = number + 1
            let isNewest = index == segments.count - 1 && last == nil
            if isNewest, SegmentReader.isUnwritten(path) {
                report.unwritten.append(path)
                report.dropped.append("\(path): created but no header was ever written (a crash while it was being created); it holds no records")
                continue
            }
            let scanned = try SegmentReader.scan(path: path, skipDamage: repair) { located throws(JournalError) in
                state.apply(located.record)
            }
            for problem in scanned.problems {
                if case .tornTail(let offset, let bytes) = problem, isNewest {
                    report.dropped.append("\(path): dropped \(bytes) bytes after offset \(offset) (a write cut short: the records in them were never acknowledged)")
                } else if repair {
                    report.dropped.append("\(path): \(describe(problem)) (skipped: --journal-repair)")
                } else {
                    throw .corrupt("\(path): \(describe(problem)). Restore the data directory from a backup, or start with --journal-repair to skip the damaged bytes and keep every readable record")
                }
            }
            report.segments.append(number)
            report.note(scanned)
        }
        return (state, report)
    }

    static func describe(_ problem: ScanProblem) -> String {
        switch problem {
        case .tornTail(let offset, let bytes):
            "\(bytes) bytes after offset \(offset) hold no complete record"
        case .corrupt(let offset, let reason, let resumesAt):
            "damaged at offset \(offset) (\(reason)); valid records resume at offset \(resumesAt)"
        }
    }
}

extension RecoveryReport {
    mutating func note(_ scanned: ScannedFile) {
        files.append(scanned)
        records += scanned.records
        skipped += scanned.skipped
        bytes += scanned.validEnd
    }
}
