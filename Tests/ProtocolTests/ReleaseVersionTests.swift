import ConveyorProtocol
import Foundation
import Testing

/// The version is written once (Sources/ConveyorProtocol/Version.swift), in the form
/// scripts/release.sh reads, and CHANGELOG.md describes it.
@Suite("Release version")
struct ReleaseVersionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("The version is MAJOR.MINOR.PATCH, on the one line scripts/release.sh reads")
    func versionLine() throws {
        let number = ConveyorVersion.number
        #expect(number.wholeMatch(of: /(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?/) != nil, "\(number)")
        let source = try Self.read("Sources/ConveyorProtocol/Version.swift")
        let lines = source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("public static let number = ") }
        #expect(lines == ["public static let number = \"\(number)\""])
    }

    @Test("CHANGELOG.md: an Unreleased section, then an entry for this version with its date, newest first")
    func changelogEntry() throws {
        let changelog = try Self.read("CHANGELOG.md")
        let headings = changelog.split(separator: "\n").filter { $0.hasPrefix("## [") }.map(String.init)
        #expect(headings.first == "## [Unreleased]", "\(headings)")
        let releases = headings.dropFirst()
        #expect(releases.first?.wholeMatch(of: /## \[([^\]]+)\] - \d{4}-\d{2}-\d{2}/)?.output.1 == Substring(ConveyorVersion.number),
                "the newest entry of CHANGELOG.md is \(releases.first ?? "missing"), not ## [\(ConveyorVersion.number)] - YYYY-MM-DD")
        #expect(Set(releases).count == releases.count, "an entry appears twice")
    }

    @Test("CHANGELOG.md says what a bump means for the CLI, the Swift API, the wire protocol and the journal format")
    func changelogPolicy() throws {
        let changelog = try Self.read("CHANGELOG.md")
        let header = changelog.components(separatedBy: "## [Unreleased]").first ?? ""
        for part in ["**CLI**", "**Swift API**", "**Wire protocol**", "**Journal format**"] {
            #expect(header.contains("| \(part)"), "no row for \(part) in the header's table")
        }
        for bump in ["**patch**", "**minor**", "**major**"] {
            #expect(header.contains(bump), "no column for \(bump)")
        }
        #expect(header.contains("Semantic Versioning") && header.contains("Keep a Changelog"))
    }
}
