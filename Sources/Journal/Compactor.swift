#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConveyorSystem

/// Folds sealed segments into a snapshot, so that the journal's size follows the live state, not
/// the history.
///
/// It replays the newest snapshot and the sealed segments up to `through` (the same replay as
/// recovery, on files the writer no longer touches), writes the resulting state as
/// `snapshot-N.tmp`, syncs it, renames it to `snapshot-N.journal`, syncs the directory, and only
/// then removes the files it folded in. A `kill -9` at any point leaves either the old files (and
/// perhaps a `.tmp` that the next start removes) or the new snapshot with files recovery ignores
/// and removes: never less than the state.
enum Compactor {
    /// Returns the new snapshot's size in bytes.
    static func compact(directory: String, through last: UInt64, deadLetterCapacity: Int, repair: Bool)
        throws(JournalError) -> Int {
        let (state, report) = try JournalReplay.replay(directory, through: last, repair: repair,
                                                       deadLetterCapacity: deadLetterCapacity)
        let final = DataDirectory.snapshotPath(in: directory, last)
        let temporary = DataDirectory.stagingPath(for: final)
        let file = try SegmentFile(creating: temporary,
                                   header: SegmentHeader(kind: .snapshot, number: last, createdAt: wallClockNanoseconds()),
                                   preallocate: 0, directory: directory)
        var encoder = JournalEncoder(capacity: 1 << 20)
        var chunk: [UInt8] = []
        do throws(JournalError) {
            try state.snapshotRecords(into: &encoder) { encoder throws(JournalError) in
                chunk.removeAll(keepingCapacity: true)
                _ = encoder.take(into: &chunk)
                JournalEncoder.sealChecksums(&chunk)
                try file.write(chunk)
            }
            try file.syncAll()
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, final) == 0 else {
            let error = JournalError.lastSystem("cannot rename \(temporary)")
            unlink(temporary)
            throw error
        }
        DataDirectory.syncDirectory(directory)
        if let previous = report.snapshot, previous != last { unlink(DataDirectory.snapshotPath(in: directory, previous)) }
        for number in report.segments { unlink(DataDirectory.segmentPath(in: directory, number)) }
        DataDirectory.syncDirectory(directory)
        return file.offset
    }
}
