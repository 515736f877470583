import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// Found while testing the producer's batch API: a cluster torn down right after it started
/// sometimes took 10 s more, the harness's SIGTERM grace, because the broker ignored SIGTERM.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StartupSignalTests {
    @Test("a broker stops cleanly on SIGTERM sent as soon as it has printed its endpoints")
    func sigtermRightAfterStartup() throws {
        let executable = try Cluster.locateExecutable()
        // The durable broker, as by default, in a directory of its own (not ./conveyor-data).
        let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-sigterm-")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The window is short: try many times. Each clean round takes a few tens of milliseconds.
        for round in 0..<40 {
            let broker = try ManagedProcess(
                name: "broker", executable: executable,
                arguments: ["broker", "--data-dir", directory, "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"])
            defer { broker.stop(grace: .seconds(1)) }
            try #require(broker.waitForLine(containing: "backend ", timeout: .seconds(30)) != nil)
            // Endpoints printed: the harness (and any supervisor) takes the broker as started.
            broker.send(SIGTERM)
            let status = broker.waitForExit(timeout: .seconds(5))
            #expect(status == 0, "round \(round): exit status \(String(describing: status)); output: \(broker.output)")
            if status != 0 { return }
        }
    }
}
