import ArgumentParser
import ConveyorProducer
import ConveyorProtocol
import ConveyorTesting
import Foundation

/// `conveyor bench --scheduled N`: fills the broker with N echo tasks scheduled a day ahead, fire
/// and forget, before a workload's warm-up, so that the workload measures the dispatch of ready
/// tasks beside them (PROTOCOL.md §8.12: they wait in a timer heap, not the queue).
enum ScheduledFill {
    static func fill(_ cluster: Cluster, count: Int) async throws {
        let producer = try cluster.makeProducer { $0.window = 10_000 }
        let notBefore = UInt64(Date().timeIntervalSince1970 * 1000) + 86_400_000
        let options = TaskOptions(notBefore: notBefore)
        let started = Date()
        var refused = 0
        var next = 0
        while next < count {
            let chunk = (next..<min(next + 50_000, count)).map {
                TaskSubmission("echo", json: RawJSON(#"{"scheduled":\#($0)}"#), options: options, id: "scheduled-\($0)")
            }
            next += chunk.count
            refused += try await producer.submitDetached(batch: chunk).filter { !$0.isAccepted }.count
        }
        let held = try await cluster.stats().scheduled ?? 0
        guard refused == 0, held == count else {
            throw ValidationError("--scheduled: the broker holds \(held) scheduled tasks of \(count) (\(refused) refused)")
        }
        FileHandle.standardError.write(Data(String(format: "scheduled %d tasks a day ahead in %.1f s\n", count,
                                                   Date().timeIntervalSince(started)).utf8))
    }
}
