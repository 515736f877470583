#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConveyorSystem
import CoreMetrics
import Dispatch
import Foundation
import Synchronization

/// The journal's writer thread (`conveyor-journal`) and compaction thread (`conveyor-compact`):
/// everything in this file runs on one of them, never on the broker's thread.
extension Journal {
    // MARK: The writer thread

    func start(segment: SendableSegment, unsnapshotted: [UInt64]) {
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-journal")
            var writer = JournalWriterState(segment: segment.file, sealed: unsnapshotted)
            writer.markDescriptor = Self.openSyncedMark(configuration.directory)
            defer { if writer.markDescriptor >= 0 { Glibc.close(writer.markDescriptor) } }
            writerLoop(&writer)
            finished.set(())
        }
        thread.start()
    }

    func writerLoop(_ writer: inout JournalWriterState) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        while true {
            let timeout = writer.nextTimeout(policy: configuration.fsync, failing: !buffer.isEmpty)
            _ = wake.wait(timeout: timeout)
            let delay = writer.gatherDelay(policy: configuration.fsync)
            if delay > 0 { usleep(delay) }
            let (batch, records, stopping) = shared.withLock { shared in
                if buffer.isEmpty { swap(&buffer, &shared.pending) } else { buffer.append(contentsOf: shared.pending) }
                shared.pending.removeAll(keepingCapacity: true)
                defer { shared.pendingRecords = 0 }
                return (shared.submittedBatch, shared.pendingRecords, shared.stopping)
            }
            writer.unwrittenRecords += records
            writer.lastWriteRecords = records
            do throws(JournalError) {
                if !buffer.isEmpty {
                    JournalEncoder.sealChecksums(&buffer, from: writer.sealedPrefix)
                    try write(&buffer, with: &writer)
                }
                let mustSync = stopping || configuration.fsync == .always
                    || writer.syncDue(policy: configuration.fsync, now: monotonicNanoseconds())
                if mustSync && writer.unsynced { try sync(&writer) }
                clearFailure()
            } catch {
                // Kept for the next try: nothing handed over is dropped. New tasks are refused meanwhile.
                writer.sealedPrefix = buffer.count
                fail(error)
                if stopping {
                    logger.critical("journal could not be written before the broker stopped: unacknowledged records are lost",
                                    metadata: ["error": "\(error)"])
                    return
                }
                continue
            }
            if released.load(ordering: .relaxed) < batch {
                released.store(batch, ordering: .releasing)
                onRelease()
            }
            if !stopping, let sealed = writer.compactionDue(snapshotBytes: shared.withLock { $0.snapshotBytes },
                                                            compacting: shared.withLock { $0.compacting }) {
                startCompaction(through: sealed)
            }
            if stopping && shared.withLock({ $0.pending.isEmpty }) { return }
        }
    }

    /// Writes whole records, starting a new segment whenever one is full. On an error the bytes
    /// not yet written stay in `buffer`.
    func write(_ buffer: inout [UInt8], with writer: inout JournalWriterState) throws(JournalError) {
        var start = 0
        defer {
            if start > 0 { buffer.removeSubrange(0..<start) }
            if buffer.isEmpty { writer.sealedPrefix = 0 }
        }
        while start < buffer.count {
            let room = configuration.segmentBytes - writer.segment.offset
            var end = start
            while end < buffer.count {
                let length = buffer.withUnsafeBytes {
                    Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: end, as: UInt32.self)))
                } + JournalEncoder.recordHeaderSize
                if end - start + length > room && !(end == start && writer.segment.offset == SegmentHeader.size) { break }
                end += length
            }
            if end > start {
                try writer.segment.write(buffer, range: start..<end)
                let written = Self.recordCount(buffer, start..<end)
                writer.unsynced = true
                writer.unsyncedRecords += written
                writer.unwrittenRecords -= written
                shared.withLock {
                    $0.recordsWritten += written
                    $0.bytesWritten += end - start
                }
                start = end
            }
            if start < buffer.count { try roll(&writer) }
        }
    }

    private static func recordCount(_ buffer: [UInt8], _ range: Range<Int>) -> Int {
        buffer.withUnsafeBytes { raw in
            var count = 0
            var offset = range.lowerBound
            while offset < range.upperBound {
                offset += Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    + JournalEncoder.recordHeaderSize
                count += 1
            }
            return count
        }
    }

    /// Seals the full segment (synced) and starts the next one.
    func roll(_ writer: inout JournalWriterState) throws(JournalError) {
        if writer.unsynced { try sync(&writer) }
        let number = writer.segment.number + 1
        let next = try SegmentFile(creating: directory.segmentPath(number),
                                   header: SegmentHeader(kind: .segment, number: number, createdAt: wallClockNanoseconds()),
                                   preallocate: configuration.segmentBytes, directory: configuration.directory,
                                   staged: true)
        writer.sealed.append(writer.segment.number)
        writer.sealedBytes += writer.segment.offset
        writer.segment = next
        shared.withLock {
            $0.syncedSegment = number
            $0.syncedOffset = next.offset
        }
        writeSyncedMark(segment: number, offset: next.offset, into: writer.markDescriptor)
    }

    func sync(_ writer: inout JournalWriterState) throws(JournalError) {
        let started = monotonicNanoseconds()
        try writer.segment.sync()
        writer.unsynced = false
        writer.lastSync = monotonicNanoseconds()
        let (records, segment, offset) = (writer.unsyncedRecords, writer.segment.number, writer.segment.offset)
        fsyncDuration?.recordNanoseconds(Int64(writer.lastSync &- started))
        recordsPerFsync?.record(records)
        writer.unsyncedRecords = 0
        shared.withLock {
            $0.syncs += 1
            $0.syncedRecords += records
            $0.syncedSegment = segment
            $0.syncedOffset = offset
        }
        writeSyncedMark(segment: segment, offset: offset, into: writer.markDescriptor)
    }

    /// Records the end of the durable data in `journal.synced` (not itself synced: it is for
    /// crash tests, which keep the page cache, and operators).
    func writeSyncedMark(segment: UInt64, offset: Int, into descriptor: Int32) {
        guard descriptor >= 0 else { return }
        var line = "segment \(segment) offset \(offset)"
        line += String(repeating: " ", count: max(0, 47 - line.utf8.count)) + "\n"
        line.withUTF8 { _ = pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Opens `journal.synced` for the writer (kept open: it is rewritten after every sync).
    static func openSyncedMark(_ directory: String) -> Int32 {
        Glibc.open(directory + "/" + DataDirectory.syncedName, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
    }

    static func writeSyncedMark(_ directory: String, segment: UInt64, offset: Int) {
        let descriptor = openSyncedMark(directory)
        guard descriptor >= 0 else { return }
        var line = "segment \(segment) offset \(offset)"
        line += String(repeating: " ", count: max(0, 47 - line.utf8.count)) + "\n"
        line.withUTF8 { _ = pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        Glibc.close(descriptor)
    }

    func fail(_ error: JournalError) {
        let first = shared.withLock { shared in
            defer { shared.failure = error.description }
            return shared.failure == nil
        }
        failing.store(true, ordering: .relaxed)
        if first {
            logger.error("journal write failed: new tasks are refused until it can write again; nothing accepted is lost",
                         metadata: ["error": "\(error)", "data_dir": "\(configuration.directory)"])
        }
    }

    func clearFailure() {
        let was = shared.withLock { shared in
            defer { shared.failure = nil }
            return shared.failure
        }
        failing.store(false, ordering: .relaxed)
        if let was { logger.notice("journal writable again; taking new tasks", metadata: ["was": "\(was)"]) }
    }

    // MARK: Compaction

    func startCompaction(through last: UInt64) {
        shared.withLock { $0.compacting = true }
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-compact")
            let started = monotonicNanoseconds()
            do throws(JournalError) {
                let bytes = try Compactor.compact(directory: configuration.directory, through: last,
                                                  deadLetterCapacity: configuration.deadLetterCapacity,
                                                  repair: configuration.repair)
                let milliseconds = Double(monotonicNanoseconds() - started) / 1e6
                shared.withLock {
                    $0.snapshot = last
                    $0.snapshotBytes = bytes
                    $0.compactions += 1
                    $0.lastCompaction = wallClockNanoseconds()
                    $0.lastCompactionMilliseconds = milliseconds
                    $0.compactedThrough = last
                }
                logger.debug("journal compacted", metadata: ["through": "\(last)", "snapshot_bytes": "\(bytes)",
                                                             "ms": "\(milliseconds)"])
            } catch {
                logger.error("journal compaction failed; the segments stay as they are",
                             metadata: ["error": "\(error)"])
            }
            shared.withLock { $0.compacting = false }
            wake.signal()
        }
        thread.start()
    }
}

/// What the writer and the broker's thread share, under the journal's lock.
struct JournalShared {
    var pending: [UInt8] = []
    var pendingRecords = 0
    var submittedBatch: UInt64 = 0
    var stopping = false
    var failure: String?
    var recordsWritten = 0
    var bytesWritten = 0
    var syncs = 0
    var syncedRecords = 0
    var rateSince: UInt64 = 0
    var rateSyncs = 0
    var syncedSegment: UInt64 = 0
    var syncedOffset = 0
    var snapshot: UInt64?
    var snapshotBytes = 0
    var compacting = false
    var compactions = 0
    var compactedThrough: UInt64 = 0
    var lastCompaction: UInt64?
    var lastCompactionMilliseconds: Double?
}

/// The writer thread's own state.
struct JournalWriterState {
    var segment: SegmentFile
    /// Sealed segments not yet folded into a snapshot, and their bytes.
    var sealed: [UInt64]
    var sealedBytes = 0
    var unsynced = false
    var unsyncedRecords = 0
    var unwrittenRecords = 0
    var lastSync: UInt64 = monotonicNanoseconds()
    /// Bytes at the start of the writer's buffer whose checksums are already filled in.
    var sealedPrefix = 0
    /// `journal.synced`, open for the writer's whole life.
    var markDescriptor: Int32 = -1
    /// Records in the last write: a large one means the broker is busy, and the next sync waits a
    /// moment to gather more (``gatherDelay(policy:)``).
    var lastWriteRecords = 0

    init(segment: SegmentFile, sealed: [UInt64]) {
        self.segment = segment
        self.sealed = sealed
    }

    /// How long the writer may sleep: until an interval sync is due, a second when a write
    /// failed (to try again), else until woken.
    func nextTimeout(policy: FsyncPolicy, failing: Bool) -> DispatchTime {
        if failing { return .now() + .seconds(1) }
        if case .interval(let milliseconds) = policy, unsynced {
            let due = lastSync &+ UInt64(milliseconds) * 1_000_000
            let now = monotonicNanoseconds()
            return .now() + .nanoseconds(Int(due > now ? due - now : 0))
        }
        return .now() + .seconds(1)
    }

    /// Adaptive group commit: under ``FsyncPolicy/always``, when the last write held many records
    /// (the broker is busy), wait until 250 µs after the last sync before taking the next batch,
    /// so that each `fdatasync` covers more records. A lone task (a latency-bound producer) never
    /// waits.
    func gatherDelay(policy: FsyncPolicy) -> UInt32 {
        guard policy == .always, lastWriteRecords >= 32 else { return 0 }
        let due = lastSync &+ 250_000
        let now = monotonicNanoseconds()
        return due > now ? UInt32((due - now) / 1000) : 0
    }

    func syncDue(policy: FsyncPolicy, now: UInt64) -> Bool {
        guard case .interval(let milliseconds) = policy else { return false }
        return now &- lastSync >= UInt64(milliseconds) * 1_000_000
    }

    /// The last sealed segment to fold into a snapshot, when enough has piled up: at least four
    /// sealed segments and at least as many bytes as the last snapshot, so that compaction work
    /// stays proportional to what was written.
    mutating func compactionDue(snapshotBytes: Int, compacting: Bool) -> UInt64? {
        guard !compacting, sealed.count >= 4, sealedBytes >= snapshotBytes, let last = sealed.last else { return nil }
        sealed.removeAll()
        sealedBytes = 0
        return last
    }
}

/// Hands a freshly created segment to the writer thread, which from then on is its only user.
struct SendableSegment: @unchecked Sendable {
    // Safe: created on the opening thread, used only by the writer thread after the handover.
    let file: SegmentFile
    init(_ file: SegmentFile) { self.file = file }
}
