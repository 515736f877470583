import ArgumentParser
import ConveyorJournal
import ConveyorProtocol
import Foundation

/// `conveyor journal verify|dump DIR`: a broker's data directory, for operators.
struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Check or read a broker's data directory (safe while the broker runs).",
        subcommands: [JournalVerifyCommand.self, JournalDumpCommand.self])
}

struct JournalVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every record of a data directory and say what a broker would recover from it.",
        discussion: """
            Reads the newest snapshot and every segment after it, as recovery does, checking each \
            record's checksum. Prints one line per file and a summary. Exit status 0 when the \
            journal is whole (a torn tail at the end of the newest segment is normal after a crash, \
            or while a broker writes: it holds nothing that was acknowledged), 1 when it is damaged \
            (each damage is named with its file and offset).
            """)

    @Argument(help: "The data directory (the broker's --data-dir).")
    var directory: String

    func run() throws {
        let files: JournalFiles
        do {
            files = try DataDirectory.listing(directory)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        guard !files.segments.isEmpty || !files.snapshots.isEmpty else {
            printError("error: \(directory) holds no journal (no segment-*.journal or snapshot-*.journal files)")
            throw ExitCode.failure
        }
        var damaged = false
        let state: RecoveredState
        let report: RecoveryReport
        do {
            (state, report) = try JournalReplay.replay(directory, repair: true)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        for file in report.files {
            let name = URL(fileURLWithPath: file.path).lastPathComponent
            printLine("\(name): format \(file.header.version), \(file.records) records, data ends at offset \(file.validEnd)")
        }
        for line in report.dropped {
            let torn = line.contains("a write cut short")
            if !torn { damaged = true }
            printLine((torn ? "note: " : "damage: ") + line)
        }
        if let first = report.segments.first, let last = report.segments.last,
           report.segments.count != Int(last - first + 1) {
            damaged = true
        }
        let counts = state.counts
        printLine("recovers: \(counts.queued) queued, \(counts.running) running (requeued at start), \(counts.delayed) delayed, \(counts.done) results kept, \(state.deadLetters.count) dead letters; \(report.records) records in \(report.bytes) bytes")
        if !state.paused.isEmpty { printLine("paused: \(state.paused.sorted().joined(separator: ", ")) (conveyor resume NAME)") }
        if !state.limits.isEmpty { printLine("limits: \(state.limits.keys.sorted().joined(separator: ", ")) (conveyor limit NAME --clear)") }
        if !state.schedules.isEmpty { printLine("schedules: \(state.schedules.keys.sorted().joined(separator: ", ")) (conveyor schedule remove ID)") }
        if damaged {
            printError("the journal is damaged: a broker refuses it unless started with --journal-repair, which skips the damaged bytes")
            throw ExitCode.failure
        }
        printLine("ok")
    }
}

struct JournalDumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print every record a broker would replay, one JSON object per line.",
        discussion: """
            Each line has "file", "offset", "type" and the record's fields; args and results are \
            included as JSON when they are JSON. Damaged bytes are skipped (verify names them).
            """)

    @Argument(help: "The data directory (the broker's --data-dir).")
    var directory: String

    func run() throws {
        do {
            let files = try DataDirectory.listing(directory)
            var paths: [String] = []
            if let snapshot = files.snapshots.last { paths.append(directory + "/" + Self.name("snapshot", snapshot)) }
            for number in files.segments where number > (files.snapshots.last ?? 0) {
                paths.append(directory + "/" + Self.name("segment", number))
            }
            for path in paths {
                let file = URL(fileURLWithPath: path).lastPathComponent
                _ = try SegmentReader.scan(path: path) { located in
                    printLine(Self.line(located.record, file: file, offset: located.offset))
                }
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    static func name(_ kind: String, _ number: UInt64) -> String {
        let digits = String(number)
        return kind + "-" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".journal"
    }

    static func line(_ record: JournalRecord, file: String, offset: Int) -> String {
        var fields: [(String, String)] = [("file", JSONText.quoted(file)), ("offset", "\(offset)"),
                                          ("type", JSONText.quoted(record.kind.name))]
        func task(_ entry: TaskEntry) {
            fields += [("id", JSONText.quoted(entry.id)), ("name", JSONText.quoted(entry.name)),
                       ("args", json(entry.args)), ("producer", JSONText.quoted(String(decoding: entry.producer, as: UTF8.self))),
                       ("sequence", "\(entry.sequence)"), ("deadline_ns", "\(entry.deadline)"),
                       ("timeout_ms", "\(entry.options.timeoutMilliseconds)"), ("priority", "\(entry.options.priority)"),
                       ("max_attempts", "\(entry.options.maxAttempts)")]
        }
        func result(_ entry: ResultEntry) {
            fields += [("status", JSONText.quoted(entry.status.rawValue)), ("result", json(entry.body)),
                       ("info", json(entry.info)), ("finished_ns", "\(entry.finishedAt)")]
        }
        switch record {
        case .accepted(let entry):
            task(entry)
        case .task(let entry):
            task(entry)
            fields += [("state", JSONText.quoted("\(entry.state)")), ("attempts", "\(entry.attempts)"),
                       ("not_before_ns", "\(entry.notBefore)")]
            if let entry = entry.result { result(entry) }
        case .rerouted(let id, let producer):
            fields += [("id", JSONText.quoted(id)), ("producer", JSONText.quoted(String(decoding: producer, as: UTF8.self)))]
        case .dispatched(let id, let attempts), .queued(let id, let attempts):
            fields += [("id", JSONText.quoted(id)), ("attempts", "\(attempts)")]
        case .delayed(let id, let attempts, let notBefore):
            fields += [("id", JSONText.quoted(id)), ("attempts", "\(attempts)"), ("not_before_ns", "\(notBefore)")]
        case .finished(let id, let entry):
            fields.append(("id", JSONText.quoted(id)))
            result(entry)
        case .evicted(let id), .deadLettersTaken(let id):
            fields.append(("id", JSONText.quoted(id)))
        case .owned(let id, let owner):
            fields += [("id", JSONText.quoted(id)), ("owner", JSONText.quoted(owner))]
        case .paused(let name), .resumed(let name):
            fields.append(("name", JSONText.quoted(name)))
        case .limit(let name, let limit):
            fields += [("name", JSONText.quoted(name)), ("limit", limit.isEmpty ? "null" : json(limit))]
        case .schedule(let id, let spec, let args):
            fields += [("id", JSONText.quoted(id)), ("schedule", spec.isEmpty ? "null" : json(spec)), ("args", json(args))]
        case .deadLettered(let letter):
            fields += [("id", JSONText.quoted(letter.id)), ("name", JSONText.quoted(letter.name)),
                       ("attempts", "\(letter.attempts)"), ("reason", JSONText.quoted(letter.reason)),
                       ("args", json(letter.args))]
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// The bytes as JSON when they are JSON, else as a string.
    static func json(_ bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "null" }
        if (try? JSONValidator.validate(bytes)) != nil { return String(decoding: bytes, as: UTF8.self) }
        return JSONText.quoted(String(decoding: bytes, as: UTF8.self))
    }
}
