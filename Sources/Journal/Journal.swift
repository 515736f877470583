#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import ConveyorProtocol
import ConveyorSystem
import Dispatch
import Foundation
public import CoreMetrics
public import Logging
import Synchronization

/// How a broker's journal is set up.
public struct JournalConfiguration: Sendable {
    /// The data directory (created when missing).
    public var directory: String
    public var fsync: FsyncPolicy = .always
    /// A segment's size: a new one starts once this is full.
    public var segmentBytes = 64 << 20
    /// Dead letters the broker keeps, and so a snapshot keeps.
    public var deadLetterCapacity = 10_000
    /// Skip damaged bytes at recovery instead of refusing to start.
    public var repair = false
    /// Where each fsync's duration and the records it made durable are recorded (swift-metrics:
    /// `conveyor_journal_fsync_duration_seconds`, `conveyor_journal_records_per_fsync`); `nil`: nowhere.
    public var metricsFactory: (any MetricsFactory)?

    public init(directory: String) { self.directory = directory }
}

/// The broker's write-ahead journal: records of the task state machine's transitions, written
/// and made durable off the broker's thread with group commit.
///
/// The broker's thread appends the records of one loop turn to a ``JournalEncoder`` and hands
/// them over with ``commit(_:)``, which returns the batch's number and never blocks on I/O. The
/// writer thread (`conveyor-journal`) takes everything handed over since its last write (one
/// turn's records, or several turns' while a sync ran), writes it, makes it durable with one
/// `fdatasync` (``FsyncPolicy/always``), and then raises ``releasedBatch`` and calls
/// `onRelease`: acknowledgements and results of batches up to it may go out. Sealed segments are
/// folded into snapshots by a compaction thread (`conveyor-compact`), so the journal's size
/// follows the live state. See docs/RELIABILITY.md.
public final class Journal: Sendable {
    public let configuration: JournalConfiguration
    let directory: DataDirectory
    let logger: Logger
    let wake = DispatchSemaphore(value: 0)
    let shared: Mutex<JournalShared>
    let released = Atomic<UInt64>(0)
    let failing = Atomic<Bool>(false)
    let finished = OneShot<Void>()
    let onRelease: @Sendable () -> Void
    /// The writer thread's fsync timings, when ``JournalConfiguration/metricsFactory`` is set.
    let fsyncDuration: CoreMetrics.Timer?
    let recordsPerFsync: Recorder?

    /// Opens (and locks) the data directory, replays it, cuts a torn tail off, starts a new segment
    /// and the writer thread. Returns the journal and the state to rebuild the broker from.
    public static func open(_ configuration: JournalConfiguration, logger: Logger,
                            onRelease: @escaping @Sendable () -> Void) throws(JournalError)
        -> (journal: Journal, state: RecoveredState, report: RecoveryReport) {
        let directory = try DataDirectory(path: configuration.directory)
        let files = try DataDirectory.listing(configuration.directory)
        for leftover in files.temporary { unlink(leftover) }
        let (state, report) = try JournalReplay.replay(configuration.directory, repair: configuration.repair,
                                                       deadLetterCapacity: configuration.deadLetterCapacity)
        for path in report.unwritten { unlink(path) }
        // Files a compaction had folded in before a crash kept it from removing them.
        if let snapshot = report.snapshot {
            for number in files.segments where number <= snapshot { unlink(directory.segmentPath(number)) }
            for number in files.snapshots where number < snapshot { unlink(directory.snapshotPath(number)) }
        }
        // Go on in the newest segment when it has room (a restart does not leave a mostly empty
        // preallocated file behind), else start the next one.
        var unsnapshotted = report.segments
        let segment: SegmentFile
        if let newest = report.files.last, newest.header.kind == .segment,
           newest.header.version == SegmentHeader.currentVersion, newest.validEnd < configuration.segmentBytes / 2 {
            if case .tornTail? = newest.problems.last { try SegmentFile.truncate(newest.path, to: newest.validEnd) }
            segment = try SegmentFile(reopening: newest.path, number: newest.header.number, at: newest.validEnd,
                                      preallocate: configuration.segmentBytes)
            // What an earlier run wrote (under any policy) is durable from here on.
            try segment.sync()
            unsnapshotted.removeLast()
        } else {
            if let newest = report.files.last, newest.header.kind == .segment, case .tornTail? = newest.problems.last {
                try SegmentFile.truncate(newest.path, to: newest.validEnd)
            }
            let number = report.lastNumber + 1
            segment = try SegmentFile(creating: directory.segmentPath(number),
                                      header: SegmentHeader(kind: .segment, number: number, createdAt: wallClockNanoseconds()),
                                      preallocate: configuration.segmentBytes, directory: configuration.directory,
                                      staged: true)
        }
        let first = segment.number
        var initial = JournalShared()
        initial.snapshot = report.snapshot
        initial.snapshotBytes = report.snapshot.map { Self.fileSize(directory.snapshotPath($0)) } ?? 0
        initial.rateSince = monotonicNanoseconds()
        initial.syncedSegment = first
        initial.syncedOffset = segment.offset
        Self.writeSyncedMark(configuration.directory, segment: first, offset: segment.offset)
        let journal = Journal(configuration: configuration, directory: directory, logger: logger, shared: initial,
                              onRelease: onRelease)
        journal.start(segment: SendableSegment(segment), unsnapshotted: unsnapshotted)
        return (journal, state, report)
    }

    private init(configuration: JournalConfiguration, directory: DataDirectory, logger: Logger, shared: JournalShared,
                 onRelease: @escaping @Sendable () -> Void) {
        self.configuration = configuration
        self.directory = directory
        self.logger = logger
        self.shared = Mutex(shared)
        self.onRelease = onRelease
        fsyncDuration = configuration.metricsFactory.map {
            CoreMetrics.Timer(label: "conveyor_journal_fsync_duration_seconds", factory: $0)
        }
        recordsPerFsync = configuration.metricsFactory.map {
            Recorder(label: "conveyor_journal_records_per_fsync", aggregate: true, factory: $0)
        }
    }

    // MARK: The broker's side

    /// Hands the encoder's records to the writer; returns the number of the batch they form (or
    /// of the last batch, when there were none: whatever the caller sends now waits for it).
    public func commit(_ encoder: inout JournalEncoder) -> UInt64 {
        guard !encoder.isEmpty else { return shared.withLock { $0.submittedBatch } }
        let batch = shared.withLock { shared in
            shared.pendingRecords += encoder.take(into: &shared.pending)
            shared.submittedBatch += 1
            return shared.submittedBatch
        }
        wake.signal()
        return batch
    }

    /// Batches up to this one are written (and durable, under ``FsyncPolicy/always``): what they
    /// acknowledge may go out.
    public var releasedBatch: UInt64 { released.load(ordering: .acquiring) }

    /// Why the journal cannot write right now (a full disk, say), or `nil`. While set the broker
    /// refuses new tasks; what it already accepted stays in memory and is written once it can be.
    public var writeFailure: String? { shared.withLock { $0.failure } }

    /// Whether ``writeFailure`` is set: one atomic load, for the broker's check on every submit.
    public var isFailing: Bool { failing.load(ordering: .relaxed) }

    /// Writes and syncs everything handed over, stops the writer, waits for a compaction that is
    /// running, and unlocks the data directory.
    public func close() {
        shared.withLock { $0.stopping = true }
        wake.signal()
        _ = finished.waitBlocking()
        while shared.withLock({ $0.compacting }) { usleep(1000) }
        directory.unlock()
    }

    /// Figures for `conveyor stats`.
    public func statistics(now: UInt64) -> BrokerStatistics.Journal {
        let files = (try? DataDirectory.listing(configuration.directory)) ?? JournalFiles()
        var size = 0
        for number in files.segments { size += Self.fileSize(directory.segmentPath(number)) }
        for number in files.snapshots { size += Self.fileSize(directory.snapshotPath(number)) }
        return shared.withLock { shared in
            let window = max(1, now &- shared.rateSince)
            return BrokerStatistics.Journal(
                directory: configuration.directory, fsync: configuration.fsync.description, sizeBytes: size,
                segments: files.segments.count, records: shared.recordsWritten, bytesWritten: shared.bytesWritten,
                fsyncs: shared.syncs,
                fsyncsPerSecond: Double(shared.syncs - shared.rateSyncs) * 1e9 / Double(window),
                recordsPerFsync: shared.syncs > 0 ? Double(shared.syncedRecords) / Double(shared.syncs) : 0,
                syncedSegment: shared.syncedSegment, syncedOffset: shared.syncedOffset,
                compactions: shared.compactions, lastCompaction: shared.lastCompaction,
                lastCompactionMilliseconds: shared.lastCompactionMilliseconds, snapshotBytes: shared.snapshotBytes,
                writeFailure: shared.failure)
        }
    }

    /// Starts a new window for ``statistics(now:)``'s fsync rate.
    public func resetRate(now: UInt64) {
        shared.withLock {
            $0.rateSince = now
            $0.rateSyncs = $0.syncs
        }
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}

