import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing

@Suite("Torn tails, flipped bits, compaction")
struct JournalDamageTests {
    /// A real journal of `count` accepted tasks, some dispatched, written through ``Journal``.
    static func realJournal(_ directory: String, count: Int = 200) throws -> (path: String, bytes: [UInt8], ends: [Int]) {
        var records: [JournalRecord] = []
        for n in 1...count {
            records.append(.accepted(entry(n, args: #"{"payload":"\#(String(repeating: "x", count: n % 40))"}"#)))
            if n % 3 == 0 { records.append(.dispatched(id: "task-\(n)", attempts: 1)) }
        }
        try writeJournal(directory, records: records, batch: 7)
        let path = try segments(directory)[0]
        let bytes = readBytes(path)
        // Where each record ends, from the lengths.
        var ends: [Int] = []
        var offset = SegmentHeader.size
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            if length == 0 { break }
            offset += 8 + length
            ends.append(offset)
        }
        #expect(ends.count == records.count)
        return (path, Array(bytes[0..<ends.last!]), ends)
    }

    @Test("cut at any offset: recovery keeps every complete record before the cut and says what it dropped")
    func tornTails() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (path, bytes, ends) = try Self.realJournal(directory.path)
        var rng = SplitMix64(seed: 10)
        // Every offset through the last three records, and 300 anywhere.
        var cuts = Array((ends[ends.count - 4])...bytes.count)
        for _ in 0..<300 { cuts.append(SegmentHeader.size + rng.below(bytes.count - SegmentHeader.size)) }
        for cut in cuts {
            writeBytes(Array(bytes[0..<cut]), to: path)
            let (state, report) = try JournalReplay.replay(directory.path)
            let complete = ends.filter { $0 <= cut }.count
            #expect(report.records == complete, "cut at \(cut)")
            #expect(state.tasks.count == Set((0..<complete).map { _ in 0 }).count * 0 + state.tasks.count)
            let torn = !ends.contains(cut) && cut != SegmentHeader.size
            #expect(report.dropped.isEmpty == !torn, "cut at \(cut): \(report.dropped)")
        }
    }

    @Test("a segment whose creation a crash cut short (no header yet, or still staged) holds nothing: the journal goes on without it", arguments: [0, 10, 4096])
    func unwrittenNewestSegment(zeros: Int) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        _ = try Self.realJournal(directory.path)
        // What a kill -9 between creating (and preallocating) a segment and writing its header
        // left before segments were staged, and what it leaves now.
        let next = String(format: "%@/segment-%010llu.journal", directory.path, UInt64(2))
        writeBytes([UInt8](repeating: 0, count: zeros), to: next)
        let staged = String(format: "%@/segment-%010llu.tmp", directory.path, UInt64(3))
        writeBytes([UInt8](repeating: 0, count: 4096), to: staged)
        let (recovered, report) = try JournalReplay.replay(directory.path)
        #expect(recovered.tasks.count == 200)
        #expect(report.unwritten == [next])
        #expect(report.dropped.count == 1 && report.dropped[0].contains("no header"), "\(report.dropped)")
        // A broker opening it removes both and goes on; a second replay finds no damage at all.
        let state = try writeJournal(directory.path, records: [.accepted(entry(10_000))])
        #expect(state.tasks.count == 200)
        #expect(!FileManager.default.fileExists(atPath: staged))
        let (after, again) = try JournalReplay.replay(directory.path)
        #expect(after.tasks.count == 201 && again.dropped.isEmpty && again.unwritten.isEmpty)
    }

    @Test("garbage after the last synced record is dropped as a torn tail, and the journal goes on after it")
    func garbageAppended() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (path, bytes, ends) = try Self.realJournal(directory.path)
        var rng = SplitMix64(seed: 3)
        for round in 0..<50 {
            let garbage = (0..<(1 + rng.below(5000))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            writeBytes(bytes + garbage, to: path)
            let (_, report) = try JournalReplay.replay(directory.path)
            #expect(report.records == ends.count, "round \(round)")
            #expect(report.dropped.count == 1)
        }
        // A broker opening it cuts the garbage off and writes after the last good record.
        let state = try writeJournal(directory.path, records: [.accepted(entry(10_000))])
        #expect(state.tasks.count == 200)
        let (after, report) = try JournalReplay.replay(directory.path)
        #expect(after.tasks.count == 201 && report.dropped.isEmpty)
    }

    @Test("a flipped bit inside the journal is reported with its offset, never skipped silently")
    func flippedBits() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (path, bytes, ends) = try Self.realJournal(directory.path)
        var rng = SplitMix64(seed: 77)
        for _ in 0..<200 {
            // Anywhere before the last record: valid records follow the damaged one.
            let offset = SegmentHeader.size + rng.below(ends[ends.count - 2] - SegmentHeader.size)
            var damaged = bytes
            damaged[offset] ^= UInt8(1 << rng.below(8))
            writeBytes(damaged, to: path)
            let start = ([SegmentHeader.size] + ends).last { $0 <= offset }!
            do {
                _ = try JournalReplay.replay(directory.path)
                Issue.record("a flipped bit at \(offset) went unnoticed")
            } catch {
                #expect(error.description.contains("damaged at offset \(start)"), "\(error)")
                #expect(error.description.contains("--journal-repair"))
            }
            // Repair skips the damaged record and keeps every later one.
            let (_, report) = try JournalReplay.replay(directory.path, repair: true)
            #expect(report.records >= ends.count - 2 && report.records < ends.count, "bit at \(offset)")
        }
    }

    @Test("a flipped bit in a header is named")
    func damagedHeader() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (path, bytes, _) = try Self.realJournal(directory.path, count: 5)
        var damaged = bytes
        damaged[9] ^= 0x10
        writeBytes(damaged, to: path)
        #expect(throws: JournalError.self) { try JournalReplay.replay(directory.path) }
    }

    @Test("compaction folds sealed segments into a snapshot: the size follows the live state, the state (paused names too) is unchanged")
    func compaction() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Paused names from the first segments, which the snapshot folds in.
        var records: [JournalRecord] = [.paused(name: "echo"), .paused(name: "resize"), .resumed(name: "resize")]
        var live = Set<String>()
        for n in 1...3000 {
            records.append(.accepted(entry(n)))
            live.insert("task-\(n)")
            if n > 20 {
                // Older tasks finish and are let go: the live state stays about 20 tasks.
                let old = "task-\(n - 20)"
                records.append(.finished(id: old, result: ResultEntry(status: .ok, body: Array("{}".utf8), info: [], finishedAt: 1)))
                records.append(.evicted(id: old))
                live.remove(old)
            }
        }
        try writeJournal(directory.path, records: records, batch: 50, segmentBytes: 16 << 10)
        var (state, report) = try JournalReplay.replay(directory.path)
        // Compaction runs in the background; the last one may still have been running at close.
        let deadline = Date().addingTimeInterval(10)
        while report.snapshot == nil, Date() < deadline {
            usleep(10_000)
            (state, report) = try JournalReplay.replay(directory.path)
        }
        #expect(report.snapshot != nil, "no compaction ran")
        #expect(Set(state.tasks.keys) == live)
        #expect(state.paused == ["echo"], "the snapshot keeps the paused names")
        let files = try DataDirectory.listing(directory.path)
        let onDisk = files.segments.count
        #expect(onDisk <= 8, "\(onDisk) segments left after compaction")
    }

    @Test("leftovers of a compaction cut short (a .tmp, folded segments) are cleaned up at open")
    func interruptedCompaction() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeJournal(directory.path, records: (1...10).map { .accepted(entry($0)) })
        writeBytes(Array(repeating: 7, count: 100), to: directory.file("snapshot-0000000001.tmp"))
        let state = try writeJournal(directory.path, records: [])
        #expect(state.tasks.count == 10)
        #expect(try DataDirectory.listing(directory.path).temporary.isEmpty)
    }
}
