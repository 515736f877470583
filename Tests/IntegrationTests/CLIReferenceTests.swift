import ConveyorTesting
import Foundation
import Testing

/// docs/CLI.md is what scripts/gen-cli-doc.py makes from the built `conveyor`'s own description of
/// its commands (`--experimental-dump-help`): a help text, option or default changed without
/// regenerating it fails here.
@Suite("CLI reference", .timeLimit(.minutes(1)))
struct CLIReferenceTests {
    /// The repository root: this file is Tests/IntegrationTests/CLIReferenceTests.swift.
    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Tests/IntegrationTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // the root

    private static let refresh = "swift build && python3 scripts/gen-cli-doc.py"

    @Test("docs/CLI.md is up to date with the argument parser")
    func referenceIsUpToDate() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.repositoryRoot.appendingPathComponent("scripts/gen-cli-doc.py").path,
                             "--conveyor", try Cluster.locateExecutable().path, "--output", "-"]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting: the document is larger than a pipe holds.
        let generated = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0,
                     "scripts/gen-cli-doc.py (python3) exited \(process.terminationStatus): \(message)")

        let committed = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("docs/CLI.md"), encoding: .utf8)
        guard generated != committed else { return }
        let new = generated.split(separator: "\n", omittingEmptySubsequences: false)
        let old = committed.split(separator: "\n", omittingEmptySubsequences: false)
        let line = (0..<min(new.count, old.count)).first { new[$0] != old[$0] } ?? min(new.count, old.count)
        Issue.record("""
            docs/CLI.md is out of date with the argument parser: run `\(Self.refresh)` and commit it.
            First difference at line \(line + 1):
              docs/CLI.md: \(line < old.count ? String(old[line]) : "(end of file)")
              generated:   \(line < new.count ? String(new[line]) : "(end of file)")
            """)
    }
}
