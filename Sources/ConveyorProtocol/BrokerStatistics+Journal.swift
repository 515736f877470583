extension BrokerStatistics {
    /// The durable broker's journal (docs/RELIABILITY.md), as `conveyor stats` shows it.
    public struct Journal: Codable, Sendable, Equatable {
        /// The data directory.
        public var directory: String
        /// `always`, `interval:MS` or `never`.
        public var fsync: String
        /// Bytes of every segment and snapshot on disk (segments count their preallocated size).
        public var sizeBytes: Int
        public var segments: Int
        /// Records and bytes written since the broker started.
        public var records: Int
        public var bytesWritten: Int
        public var fsyncs: Int
        /// Over the time since the previous `STATS` (or since the start).
        public var fsyncsPerSecond: Double
        /// Records made durable per `fdatasync`, on average: how much group commit gathers.
        public var recordsPerFsync: Double
        /// The end of what is durable: this segment, up to this offset.
        public var syncedSegment: UInt64
        public var syncedOffset: Int
        public var compactions: Int
        /// When the last compaction finished (wall-clock ns since the Unix epoch), and how long it took.
        public var lastCompaction: UInt64?
        public var lastCompactionMilliseconds: Double?
        public var snapshotBytes: Int
        /// Why the journal cannot write right now (new tasks are refused meanwhile), if it cannot.
        public var writeFailure: String?

        enum CodingKeys: String, CodingKey {
            case directory, fsync, segments, records, fsyncs, compactions
            case sizeBytes = "size_bytes"
            case bytesWritten = "bytes_written"
            case fsyncsPerSecond = "fsyncs_per_second"
            case recordsPerFsync = "records_per_fsync"
            case syncedSegment = "synced_segment"
            case syncedOffset = "synced_offset"
            case lastCompaction = "last_compaction_ns"
            case lastCompactionMilliseconds = "last_compaction_ms"
            case snapshotBytes = "snapshot_bytes"
            case writeFailure = "write_failure"
        }

        public init(directory: String, fsync: String, sizeBytes: Int, segments: Int, records: Int, bytesWritten: Int,
                    fsyncs: Int, fsyncsPerSecond: Double, recordsPerFsync: Double, syncedSegment: UInt64,
                    syncedOffset: Int, compactions: Int, lastCompaction: UInt64?, lastCompactionMilliseconds: Double?,
                    snapshotBytes: Int, writeFailure: String?) {
            self.directory = directory
            self.fsync = fsync
            self.sizeBytes = sizeBytes
            self.segments = segments
            self.records = records
            self.bytesWritten = bytesWritten
            self.fsyncs = fsyncs
            self.fsyncsPerSecond = fsyncsPerSecond
            self.recordsPerFsync = recordsPerFsync
            self.syncedSegment = syncedSegment
            self.syncedOffset = syncedOffset
            self.compactions = compactions
            self.lastCompaction = lastCompaction
            self.lastCompactionMilliseconds = lastCompactionMilliseconds
            self.snapshotBytes = snapshotBytes
            self.writeFailure = writeFailure
        }
    }
}
