import ConveyorSchedule
import Foundation
import Testing

/// Python's croniter as the oracle: Tests/Support/cron/oracle.py makes thousands of random
/// expressions in seven zones with DST (and UTC), starting within 2025-2028 (half of them in the
/// days before a DST transition), and prints croniter's next 20 fire times for each; every one
/// must be what ``CronExpression/next(after:in:)`` gives. croniter and tzdata come from
/// `bash scripts/ensure-deps.sh --python`; without them the test is skipped, except in CI, where
/// it fails.
enum CroniterOracle {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/cron/oracle.py").path
    static let inCI = ProcessInfo.processInfo.environment["CI"] != nil
    static let installed: Bool = (try? python(["-c", "import croniter, zoneinfo; zoneinfo.ZoneInfo('Australia/Lord_Howe')"]).status) == 0
    static let runs = installed || inCI

    /// Runs python3 with arguments; its standard output, and its standard error from a file (so
    /// that neither pipe can fill while the other is read).
    static func python(_ arguments: [String]) throws -> (status: Int32, output: Data, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let output = Pipe()
        let errorsFile = FileManager.default.temporaryDirectory.appendingPathComponent("cron-oracle-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errorsFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorsFile) }
        let errors = try FileHandle(forWritingTo: errorsFile)
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errors.close()
        return (process.terminationStatus, data, (try? String(contentsOf: errorsFile, encoding: .utf8)) ?? "")
    }

    struct Line: Decodable {
        let expr: String?
        let tz: String?
        let start: Int64?
        let fires: [Int64?]?
        let croniter: String?
    }
}

@Suite("croniter as the oracle", .timeLimit(.minutes(3)))
struct CroniterOracleTests {
    static func text(_ seconds: Int64?, _ zone: TimeZone) -> String {
        guard let seconds else { return "none" }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = zone
        return "\(seconds) (\(formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))))"
    }

    @Test("3,000 random expressions in 8 zones: the next 20 fire times of each are croniter's",
          .enabled(if: CroniterOracle.runs, "croniter is not installed (python3 -m pip install croniter tzdata, or bash scripts/ensure-deps.sh --python); CI installs it"))
    func matchesCroniter() throws {
        try #require(CroniterOracle.installed, "croniter must be installed in CI: bash scripts/ensure-deps.sh --python")
        let seed = ProcessInfo.processInfo.environment["CONVEYOR_CRON_SEED"] ?? "17"
        let run = try CroniterOracle.python([CroniterOracle.script, "--seed", seed, "--count", "3000", "--fires", "20"])
        try #require(run.status == 0, "oracle.py failed (\(run.status)): \(run.errors)")
        let decoder = JSONDecoder()
        var expressions = 0, fires = 0, crossings = 0, mismatches = 0
        var version = "?"
        for line in run.output.split(separator: UInt8(ascii: "\n")) {
            let entry = try decoder.decode(CroniterOracle.Line.self, from: Data(line))
            if let croniter = entry.croniter { version = croniter }
            guard let text = entry.expr, let zoneName = entry.tz, let start = entry.start, let expected = entry.fires else { continue }
            let zone = try #require(TimeZone(identifier: zoneName), "Foundation has no zone \(zoneName)")
            let cron: CronExpression
            do { cron = try CronExpression(text) } catch {
                Issue.record("croniter takes '\(text)', CronExpression refuses it: \(error)")
                mismatches += 1
                continue
            }
            var got: [Int64?] = []
            var cursor = start
            for _ in expected {
                let next = cron.next(after: Date(timeIntervalSince1970: TimeInterval(cursor)), in: zone)
                    .map { Int64($0.timeIntervalSince1970) }
                got.append(next)
                guard let next else { break }
                cursor = next
            }
            expressions += 1
            fires += expected.count
            let offsets = Set(([start] + expected.compactMap { $0 }).map { zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval($0))) })
            if offsets.count > 1 { crossings += 1 }
            if got != expected {
                mismatches += 1
                if mismatches <= 10 {
                    let firstBad = (0..<min(got.count, expected.count)).first { got[$0] != expected[$0] } ?? min(got.count, expected.count)
                    Issue.record("""
                        '\(text)' in \(zoneName) from \(Self.text(start, zone)): fire \(firstBad + 1) differs
                          croniter: \(expected.map { Self.text($0, zone) }.joined(separator: ", "))
                          Swift:    \(got.map { Self.text($0, zone) }.joined(separator: ", "))
                        """)
                }
            }
        }
        print("croniter \(version), seed \(seed): \(expressions) expressions, \(fires) fire times compared, \(crossings) sequences across a DST change, \(mismatches) mismatches")
        #expect(mismatches == 0)
        #expect(expressions == 3000)
        #expect(fires >= 50_000, "most expressions fire 20 times")
        #expect(crossings >= 300, "enough sequences cross a DST change")
    }
}
