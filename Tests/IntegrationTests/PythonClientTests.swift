import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// The Python client (clients/python, written from docs/PROTOCOL.md alone), run as
/// `python3 -m conveyor_client` from the source tree, against a real broker and a real consumer
/// process: proof that the documented protocol is enough for a client in another language.
@Suite("Python client", .serialized, .timeLimit(.minutes(5)))
struct PythonClientTests {
    @Test("submits 200 echo and 10 sha256 tasks and gets every result right")
    func submitsAndChecksResults() async throws {
        try PythonSupport.requirePython()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let lines = try runClient(["--broker", cluster.frontend, "--count", "200", "--sha256", "10",
                                       "--timeout", "90", "--quiet"],
                                      expecting: "summary: 210/210 tasks succeeded")
            #expect(lines.contains { $0.contains("0 wrong or failed, 0 missing") })
        }
    }

    @Test("gets ERROR for a wrong version, an unknown command and a short SUBMIT group; silence for garbage")
    func rawProtocolChecks() async throws {
        try PythonSupport.requirePython()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let lines = try runClient(["--broker", cluster.frontend, "--raw-checks", "--timeout", "60"],
                                      expecting: "raw checks passed")
            #expect(lines.contains { $0.contains("wrong protocol version tag CVY9: ERROR reply") })
            #expect(lines.contains { $0.hasPrefix("PASS") && $0.contains("garbage without the tag gets no reply") })
            #expect(!lines.contains { $0.hasPrefix("FAIL") })
        }
    }

    @Test("the example examples/python-producer/producer.py gets the five results it expects")
    func example() async throws {
        try PythonSupport.requirePython()
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let script = PythonSupport.repositoryRoot.appendingPathComponent("examples/python-producer/producer.py")
            // Without PYTHONPATH: the example finds the package in the checkout by itself.
            let process = try ManagedProcess(
                name: "python-example", executable: URL(fileURLWithPath: "/usr/bin/env"),
                arguments: ["python3", script.path, "--broker", cluster.frontend, "--timeout", "30"],
                environment: ["PYTHONUNBUFFERED": "1"])
            guard let status = process.waitForExit(timeout: .seconds(90)) else {
                process.stop(grace: .seconds(2))
                Issue.record("producer.py did not exit within 90 s; output:\n\(process.output.joined(separator: "\n"))")
                throw PythonTestError.hung("examples/python-producer/producer.py")
            }
            _ = process.waitForLine(timeout: .seconds(5)) { $0.hasSuffix("results as expected") }
            let lines = process.output
            let transcript = lines.joined(separator: "\n")
            #expect(status == 0, "producer.py exited with status \(status); output:\n\(transcript)")
            #expect(lines.contains("5/5 results as expected"), "output:\n\(transcript)")
            #expect(lines.contains("fail    -> error: handler_error: this one fails on purpose"), "output:\n\(transcript)")
        }
    }

    /// Runs `python3 -m conveyor_client` with `arguments`, waits for it with a deadline, and expects
    /// exit status 0, a summary line containing `summary`, and "ALL OK". Returns its output lines.
    private func runClient(_ arguments: [String], expecting summary: String) throws -> [String] {
        let process = try ManagedProcess(
            name: "python-client", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-m", "conveyor_client"] + arguments,
            environment: PythonSupport.environment)
        let command = "python3 -m conveyor_client \(arguments.joined(separator: " "))"
        guard let status = process.waitForExit(timeout: .seconds(150)) else {
            process.stop(grace: .seconds(2))
            let transcript = process.output.joined(separator: "\n")
            Issue.record("\(command) did not exit within 150 s; output:\n\(transcript)")
            throw PythonTestError.hung("python3 -m conveyor_client")
        }
        // The output reader may still be delivering the last lines just after the exit.
        _ = process.waitForLine(timeout: .seconds(5)) { $0 == "ALL OK" || $0 == "FAILED" }
        let lines = process.output
        let transcript = lines.joined(separator: "\n")
        #expect(status == 0, "\(command) exited with status \(status); output:\n\(transcript)")
        #expect(lines.contains { $0.hasPrefix("summary:") && $0.contains(summary) },
                "no summary line containing '\(summary)'; output:\n\(transcript)")
        #expect(lines.contains("ALL OK"), "\(command) did not print ALL OK; output:\n\(transcript)")
        return lines
    }
}
