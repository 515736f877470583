import TestSupport
import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// Helpers for the crash tests: the broker's data directory, the CLI, the execution log.
enum Durability {
    /// `journal.synced`: the end of what the broker made durable, as (segment, offset).
    static func syncedMark(_ directory: String) -> (segment: UInt64, offset: Int)? {
        guard let text = try? String(contentsOfFile: directory + "/journal.synced", encoding: .utf8) else { return nil }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count >= 4, let segment = UInt64(words[1]), let offset = Int(words[3]) else { return nil }
        return (segment, offset)
    }

    /// A position that grows as the journal does: segment number × segment size + offset.
    static func position(_ directory: String, segmentBytes: Int) -> Int {
        guard let mark = syncedMark(directory) else { return 0 }
        return Int(mark.segment) * segmentBytes + mark.offset
    }

    static func segmentPath(_ directory: String, _ number: UInt64) -> String {
        String(format: "%@/segment-%010llu.journal", directory, number)
    }

    static func files(_ directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }

    /// Writes one task's args per line to a new file in `directory` (the cluster's data
    /// directory, removed with it) and returns its path.
    static func inputFile(_ lines: [String], in directory: String) throws -> String {
        let path = directory + "/input-\(UUID().uuidString).ndjson"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `conveyor submit NAME --input FILE --no-wait` against the cluster.
    static func startBatch(_ cluster: Cluster, name: String = "echo", input: String) throws -> ManagedProcess {
        try ManagedProcess(name: "submit", executable: cluster.executable,
                           arguments: ["submit", name, "--input", input, "--no-wait", "--broker", cluster.frontend])
    }

    /// The ids a `--no-wait` batch printed as accepted, by input line.
    static func acceptedIDs(_ output: [String]) -> [Int: String] {
        var ids: [Int: String] = [:]
        for line in output where line.hasPrefix(#"{"index":"#) && !line.contains(#""status""#) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let index = object["index"] as? Int, let id = object["id"] as? String else { continue }
            ids[index] = id
        }
        return ids
    }

    /// How often each task id appears in an execution log.
    static func executions(_ path: String) -> [String: Int] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = object["id"] as? String else { continue }
            counts[id, default: 0] += 1
        }
        return counts
    }

    /// Kills the broker with SIGKILL and waits until it is gone.
    static func killBroker(_ cluster: Cluster) {
        cluster.broker?.send(SIGKILL)
        _ = cluster.broker?.waitForExit(timeout: .seconds(10))
    }

    /// Waits until every id is done (asking the broker by id, 200 queries at a time), then checks
    /// each ended `ok` with `expected[id]` as its body.
    static func expectAllDone(_ producer: Producer, _ expected: [String: String], timeout: Duration = .seconds(180)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var pending = Set(expected.keys)
        while !pending.isEmpty, ContinuousClock.now < deadline {
            let ids = Array(pending.sorted().prefix(2_000))
            for chunk in stride(from: 0, to: ids.count, by: 200).map({ ids[$0..<min($0 + 200, ids.count)] }) {
                let reports = try await withThrowingTaskGroup(of: TaskStatusReport.self) { group in
                    for id in chunk { group.addTask { try await producer.status(id: id) } }
                    return try await group.reduce(into: [TaskStatusReport]()) { $0.append($1) }
                }
                for report in reports where report.state == .done {
                    pending.remove(report.id)
                    #expect(report.result?.status == .ok, "task \(report.id): \(String(describing: report.result))")
                    #expect(report.result?.body.text == expected[report.id], "task \(report.id)")
                }
            }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(pending.isEmpty, "\(pending.count) accepted tasks never finished, e.g. \(pending.sorted().prefix(5))")
    }
}

/// A seeded generator, so that a failing kill point can be replayed from its seed.
typealias Random = TestSupport.SplitMix64
