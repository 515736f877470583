import TestSupport
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Logging

/// A fresh directory under the system's temporary directory, removed by ``remove()``.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/conveyor-journal-test-XXXXXX").utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

let quietLogger: Logger = {
    var logger = Logger(label: "journal-tests")
    logger.logLevel = .critical
    return logger
}()

/// A task entry for tests.
func entry(_ n: Int, args: String = #"{"n":1}"#) -> TaskEntry {
    TaskEntry(id: "task-\(n)", name: "echo", args: Array(args.utf8), options: TaskOptions(priority: Int32(n % 3)),
              producer: Array("producer-\(n % 2)".utf8), sequence: UInt64(n), deadline: 1_000_000 + UInt64(n))
}

/// Opens a journal in `directory`, hands it `records` in batches of `batch`, waits until the last
/// batch is released, and closes it. Returns what the open recovered.
@discardableResult
func writeJournal(_ directory: String, records: [JournalRecord], batch: Int = 10, segmentBytes: Int = 64 << 20,
                  fsync: FsyncPolicy = .always) throws -> RecoveredState {
    var configuration = JournalConfiguration(directory: directory)
    configuration.segmentBytes = segmentBytes
    configuration.fsync = fsync
    let (journal, state, _) = try Journal.open(configuration, logger: quietLogger) {}
    var encoder = JournalEncoder()
    var last: UInt64 = 0
    for (index, record) in records.enumerated() {
        encoder.append(record)
        if (index + 1) % batch == 0 { last = journal.commit(&encoder) }
    }
    last = journal.commit(&encoder)
    let deadline = Date().addingTimeInterval(20)
    while journal.releasedBatch < last, Date() < deadline { usleep(1000) }
    journal.close()
    return state
}

/// The segment files of `directory`, oldest first.
func segments(_ directory: String) throws -> [String] {
    try DataDirectory.listing(directory).segments.map { String(format: "%@/segment-%010llu.journal", directory, $0) }
}

func readBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

func writeBytes(_ bytes: [UInt8], to path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

typealias SplitMix64 = TestSupport.SplitMix64
