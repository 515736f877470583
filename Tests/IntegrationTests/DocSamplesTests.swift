import Foundation
import Testing

/// docs/TESTING.md's samples are real code: each Swift block of the page is in DocSamples.swift
/// (which the suite compiles and runs), and its Package.swift block names real products.
@Suite("docs/TESTING.md samples")
struct DocSamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The ```swift blocks of `text`.
    static func swiftBlocks(_ text: String) -> [String] {
        text.components(separatedBy: "```swift\n").dropFirst().compactMap { $0.components(separatedBy: "```\n").first }
    }

    @Test("every Swift block of docs/TESTING.md is in DocSamples.swift word for word (imports apart), and its Package.swift block names products that exist")
    func samplesAreCompiled() throws {
        let page = try Self.read("docs/TESTING.md")
        let samples = try Self.read("Tests/IntegrationTests/DocSamples.swift")
        let manifest = try Self.read("Package.swift")
        let blocks = Self.swiftBlocks(page)
        #expect(blocks.count >= 3)
        for block in blocks {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: false)
            if block.hasPrefix("// Package.swift") {
                for line in lines where line.contains(".product(name: \"") {
                    let name = line.components(separatedBy: "name: \"")[1].components(separatedBy: "\"")[0]
                    #expect(manifest.contains(".library(name: \"\(name)\""), "docs/TESTING.md names a product \(name) that Package.swift does not declare")
                }
                continue
            }
            for line in lines where line.hasPrefix("import ") {
                #expect(samples.contains("\n\(line)\n"), "DocSamples.swift lacks '\(line)'")
            }
            let body = lines.filter { !$0.hasPrefix("import ") }.joined(separator: "\n").trimmingCharacters(in: .newlines)
            #expect(samples.contains(body), "a sample of docs/TESTING.md is not in DocSamples.swift as printed (copy it there):\n\(body.prefix(200))")
        }
    }
}
