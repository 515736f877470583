import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// A real full disk: a small tmpfs the test mounts (it needs root; without it the test says so
/// and does nothing), most of it taken by a filler file.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FullDiskTests {
    @Test("a full disk: new submits are refused at once saying why, nothing accepted is lost, and work goes on once space is back")
    func fullDisk() async throws {
        let mountPoint = try Cluster.makeTemporaryDirectory(prefix: "conveyor-tmpfs-")
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint]) == 0 else {
            print("skipped: cannot mount a tmpfs here (needs root and mount permission)")
            return
        }
        defer { _ = Self.run("/bin/umount", ["-l", mountPoint]) }
        let directory = mountPoint + "/data"
        let filler = mountPoint + "/filler"
        // Leave room for the broker's first segments only.
        try Data(count: 16_777_216 - 500_000).write(to: URL(fileURLWithPath: filler))
        let arguments = ["--data-dir", directory, "--journal-segment-bytes", "131072"]
        try await withCluster(.init(consumers: 0, brokerArguments: arguments)) { cluster in
            let producer = try cluster.makeProducer()
            let payload = String(repeating: "x", count: 1_000)
            let tasks = (0..<2_000).map { TaskSubmission("echo", json: RawJSON(#"{"n":\#($0),"pad":"\#(payload)"}"#)) }
            // The batch outlasts the space: the acknowledgements of what the broker took in before
            // the disk filled wait for the journal; what comes after is refused.
            let batch = Task { try await producer.submitDetached(batch: tasks) }
            try await waitUntil(timeout: .seconds(30)) { (try? await cluster.stats())?.journal?.writeFailure != nil }
            let started = ContinuousClock.now
            // Another producer: this one's window is full of tasks whose ACCEPTED waits for the disk.
            let other = try cluster.makeProducer()
            var refusal = ""
            do {
                _ = try await other.submit("echo", json: #"{"late":true}"#)
                Issue.record("a task was accepted while the journal could not be written")
            } catch {
                refusal = "\(error)"
            }
            #expect(started.duration(to: .now) < .seconds(5), "the refusal comes at once")
            #expect(refusal.contains("cannot write its journal"), "\(refusal)")
            #expect(refusal.contains("No space left on device"), "\(refusal)")
            #expect(refusal.contains("free space in"), "\(refusal)")
            // Space comes back: the journal writes what it held and takes new tasks again.
            try FileManager.default.removeItem(atPath: filler)
            let receipts = try await batch.value
            var expected: [String: String] = [:]
            for (index, receipt) in receipts.enumerated() where receipt.refusal == nil {
                expected[receipt.id] = #"{"n":\#(index),"pad":"\#(payload)"}"#
            }
            #expect(expected.count > 100, "only \(expected.count) accepted")
            try await waitUntil(timeout: .seconds(10)) { (try? await cluster.stats())?.journal?.writeFailure == nil }
            let after = try await producer.submitDetached(batch: [TaskSubmission("echo", json: RawJSON(#"{"after":true}"#))])
            #expect(after.first?.refusal == nil, "taken again once space is back")
            if let id = after.first?.id { expected[id] = #"{"after":true}"# }
            // Nothing accepted was lost, even across a kill -9 now.
            Durability.killBroker(cluster)
            try cluster.restartBroker()
            try cluster.startConsumer(threads: 4)
            try await Durability.expectAllDone(try cluster.makeProducer(), expected)
            print("full disk: \(expected.count) accepted tasks all completed; refusals said: \(refusal)")
        }
    }

    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return -1
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
