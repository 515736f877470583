import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing

@Suite("Journal records and files")
struct JournalFileTests {
    @Test("CRC-32C matches the published check value")
    func checksum() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test("every record kind reads back as written")
    func roundTrip() throws {
        var done = entry(7)
        done.state = .done
        done.args = []
        done.result = ResultEntry(status: .ok, body: Array(#"{"ok":1}"#.utf8), info: Array("{}".utf8), finishedAt: 99)
        // A task's trace context is journaled with its options.
        var traced = entry(2)
        traced.options = TaskOptions(timeoutMilliseconds: 5000, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                     tracestate: "rojo=00f067aa0ba902b7")
        let records: [JournalRecord] = [
            .accepted(entry(1)), .accepted(traced), .rerouted(id: "task-1", producer: [1, 2, 3]), .dispatched(id: "task-1", attempts: 1),
            .queued(id: "task-1", attempts: 1), .delayed(id: "task-1", attempts: 2, notBefore: 12345),
            .finished(id: "task-1", result: ResultEntry(status: .timeout, body: Array("{}".utf8), info: [], finishedAt: 5)),
            .evicted(id: "task-1"),
            .deadLettered(DeadLetterEntry(id: "d", name: "n", attempts: 3, reason: "why", args: Array("[]".utf8),
                                          options: TaskOptions(maxAttempts: 3), producer: [9])),
            .deadLettersTaken(id: ""), .task(done), .owned(id: "task-1", owner: "billing"),
            .paused(name: "echo"), .resumed(name: "echo"),
            .limit(name: "echo", json: Array(#"{"rate":5}"#.utf8)), .limit(name: "echo", json: []),
            .schedule(id: "nightly", json: Array(#"{"id":"nightly","name":"echo","every":60}"#.utf8), args: Array("{}".utf8)),
            .schedule(id: "nightly", json: [], args: []),
        ]
        var encoder = JournalEncoder()
        for record in records { encoder.append(record) }
        var bytes: [UInt8] = []
        _ = encoder.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        #expect(try JournalRecord.decodeAll(bytes) == records)
        #expect(Set(records.map(\.kind)) == Set(JournalRecord.Kind.allCases))
    }

    @Test("a journal reopened replays what was written, and goes on in the same segment")
    func reopen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeJournal(directory.path, records: (1...50).map { .accepted(entry($0)) } + [.dispatched(id: "task-3", attempts: 1)])
        let state = try writeJournal(directory.path, records: [.finished(id: "task-4", result: ResultEntry(status: .ok, body: [], info: [], finishedAt: 1))])
        #expect(state.tasks.count == 50)
        #expect(state.tasks["task-3"]?.state == .running)
        #expect(state.lastSequence == 50)
        let (again, report) = try JournalReplay.replay(directory.path)
        #expect(again.tasks["task-4"]?.state == .done)
        #expect(report.segments == [1], "a restart goes on writing the newest segment when it has room")
    }

    @Test("a second journal on a data directory in use is refused, naming the holder")
    func lockedDirectory() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let first = try DataDirectory(path: directory.path)
        #expect(throws: JournalError.self) { _ = try DataDirectory(path: directory.path) }
        do {
            _ = try DataDirectory(path: directory.path)
        } catch {
            #expect(error.description.contains("in use by another broker (pid \(getpid())"))
        }
        _ = first
    }

    @Test("a journal written by a newer format is refused with a clear message")
    func newerFormat() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeJournal(directory.path, records: [.accepted(entry(1))])
        let path = try segments(directory.path)[0]
        var bytes = readBytes(path)
        let header = SegmentHeader(kind: .segment, number: 1, createdAt: 0, version: SegmentHeader.currentVersion + 1).bytes
        bytes.replaceSubrange(0..<header.count, with: header)
        writeBytes(bytes, to: path)
        do {
            _ = try JournalReplay.replay(directory.path)
            Issue.record("a newer journal was read")
        } catch {
            #expect(error == .newerFormat(SegmentHeader.currentVersion + 1))
            #expect(error.description.contains("newer than this conveyor's"))
        }
    }

    @Test("unknown record types: skippable ones are skipped, others refused")
    func unknownTypes() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeJournal(directory.path, records: [.accepted(entry(1))])
        let path = try segments(directory.path)[0]
        let original = readBytes(path)
        let (valid, written) = try JournalReplay.replay(directory.path)
        #expect(valid.tasks.count == 1)
        let end = written.files[0].validEnd
        for (type, skippable) in [(UInt8(0xC1), true), (UInt8(0x41), false)] {
            // A record of `type` with a 3-byte body, after the real one.
            let bytes = Array(original[0..<end])
            var record: [UInt8] = [4, 0, 0, 0, 0, 0, 0, 0, type, 1, 2, 3]
            JournalEncoder.sealChecksums(&record)
            writeBytes(bytes + record, to: path)
            if skippable {
                let (state, report) = try JournalReplay.replay(directory.path)
                #expect(state.tasks.count == 1 && report.skipped == 1)
            } else {
                #expect(throws: JournalError.self) { try JournalReplay.replay(directory.path) }
            }
        }
    }

}
