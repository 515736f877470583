import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// The Python producer in examples/python-producer, written from docs/PROTOCOL.md alone, against a
/// real broker and a real consumer process: proof that the documented protocol is enough for a
/// client in another language.
@Suite("Python client", .serialized, .timeLimit(.minutes(5)))
struct PythonClientTests {
    /// The repository root: this file is Tests/IntegrationTests/PythonClientTests.swift.
    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Tests/IntegrationTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // the root

    private static let script = repositoryRoot.appendingPathComponent("clients/python/conveyor_client/client.py")

    @Test("submits 200 echo and 10 sha256 tasks and gets every result right")
    func submitsAndChecksResults() async throws {
        try requirePython()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let lines = try runScript(["--broker", cluster.frontend, "--count", "200", "--sha256", "10",
                                       "--timeout", "90", "--quiet"],
                                      expecting: "summary: 210/210 tasks succeeded")
            #expect(lines.contains { $0.contains("0 wrong or failed, 0 missing") })
        }
    }

    @Test("gets ERROR for a wrong version, an unknown command and a short SUBMIT group; silence for garbage")
    func rawProtocolChecks() async throws {
        try requirePython()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let lines = try runScript(["--broker", cluster.frontend, "--raw-checks", "--timeout", "60"],
                                      expecting: "raw checks passed")
            #expect(lines.contains { $0.contains("wrong protocol version tag CVY9: ERROR reply") })
            #expect(lines.contains { $0.hasPrefix("PASS") && $0.contains("garbage without the tag gets no reply") })
            #expect(!lines.contains { $0.hasPrefix("FAIL") })
        }
    }

    // MARK: Helpers

    /// Fails the test, with a message saying what to install, when python3 or pyzmq is missing.
    /// (Not a skip: the test command installs pyzmq, so a missing module is a broken setup.)
    private func requirePython() throws {
        let probe = try ManagedProcess(
            name: "python-probe", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-c", "import sys, zmq; print('pyzmq', zmq.__version__, 'libzmq', zmq.zmq_version(), 'python', sys.version.split()[0])"])
        guard let status = probe.waitForExit(timeout: .seconds(30)) else {
            probe.stop(grace: .seconds(1))
            Issue.record("python3 -c 'import zmq' did not finish within 30 s")
            throw PythonClientTestError.pythonUnavailable
        }
        _ = probe.waitForLine(containing: "pyzmq", timeout: .seconds(2))
        let output = probe.output.joined(separator: "\n")
        guard status == 0 else {
            Issue.record("""
                The Python client test needs python3 with the zmq module (pyzmq) on PATH; \
                `python3 -c 'import zmq'` exited with status \(status)\(status == 127 ? " (python3 not found)" : ""). \
                Install it with `pip install pyzmq` (scripts/test.sh does). Output:
                \(output)
                """)
            throw PythonClientTestError.pythonUnavailable
        }
    }

    /// Runs producer.py with `arguments`, waits for it with a deadline, and expects exit status 0,
    /// a summary line containing `summary`, and "ALL OK". Returns its output lines.
    private func runScript(_ arguments: [String], expecting summary: String) throws -> [String] {
        let process = try ManagedProcess(
            name: "python-producer", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", Self.script.path] + arguments,
            environment: ["PYTHONUNBUFFERED": "1"])
        guard let status = process.waitForExit(timeout: .seconds(150)) else {
            process.stop(grace: .seconds(2))
            let transcript = process.output.joined(separator: "\n")
            Issue.record("producer.py \(arguments.joined(separator: " ")) did not exit within 150 s; output:\n\(transcript)")
            throw PythonClientTestError.hung
        }
        // The output reader may still be delivering the last lines just after the exit.
        _ = process.waitForLine(timeout: .seconds(5)) { $0 == "ALL OK" || $0 == "FAILED" }
        let lines = process.output
        let transcript = lines.joined(separator: "\n")
        #expect(status == 0, "producer.py exited with status \(status); output:\n\(transcript)")
        #expect(lines.contains { $0.hasPrefix("summary:") && $0.contains(summary) },
                "no summary line containing '\(summary)'; output:\n\(transcript)")
        #expect(lines.contains("ALL OK"), "producer.py did not print ALL OK; output:\n\(transcript)")
        return lines
    }
}

private enum PythonClientTestError: Error, CustomStringConvertible {
    case pythonUnavailable
    case hung

    var description: String {
        switch self {
        case .pythonUnavailable: "python3 with the zmq module (pyzmq) is not available; see the issue above"
        case .hung: "producer.py did not exit in time; see the issue above"
        }
    }
}
