import ConveyorProcess
import Foundation
import Testing

/// What the tests of the Python client (clients/python) share: where the package is, the
/// environment in which `python3` imports it from the source tree without installing it, and the
/// check that python3 with pyzmq is there.
enum PythonSupport {
    /// The repository root: this file is Tests/IntegrationTests/PythonSupport.swift.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Tests/IntegrationTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // the root

    /// clients/python: the package's directory, holding `conveyor_client/` and `tests/`.
    static let packageDirectory = repositoryRoot.appendingPathComponent("clients/python")

    /// `PYTHONPATH` with the package's directory first (so `python3 -m conveyor_client` runs the
    /// source tree, not an installed copy), and unbuffered output.
    static var environment: [String: String] {
        let existing = ProcessInfo.processInfo.environment["PYTHONPATH"].map { ":" + $0 } ?? ""
        return ["PYTHONPATH": packageDirectory.path + existing, "PYTHONUNBUFFERED": "1"]
    }

    /// Fails the test, with a message saying what to install, when python3 or pyzmq is missing.
    /// (Not a skip: the test command installs pyzmq, so a missing module is a broken setup.)
    static func requirePython() throws {
        let probe = try ManagedProcess(
            name: "python-probe", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-c", "import sys, zmq; print('pyzmq', zmq.__version__, 'libzmq', zmq.zmq_version(), 'python', sys.version.split()[0])"])
        guard let status = probe.waitForExit(timeout: .seconds(30)) else {
            probe.stop(grace: .seconds(1))
            Issue.record("python3 -c 'import zmq' did not finish within 30 s")
            throw PythonTestError.pythonUnavailable
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
            throw PythonTestError.pythonUnavailable
        }
    }
}

enum PythonTestError: Error, CustomStringConvertible {
    case pythonUnavailable
    case hung(String)

    var description: String {
        switch self {
        case .pythonUnavailable: "python3 with the zmq module (pyzmq) is not available; see the issue above"
        case .hung(let what): "\(what) did not exit in time; see the issue above"
        }
    }
}

extension PythonSupport {
    /// Runs `python3 -m unittest discover -s directory -v` with `environment` and records one
    /// issue with the whole output unless it ends with a plain `OK` (a failure, an error or a
    /// skip), a test of each of `modules` ran, and at least `minimumTests` ran.
    static func runUnittest(in directory: URL, environment: [String: String], modules: [String], minimumTests: Int) throws {
        let command = "python3 -m unittest discover -s \(directory.path) -v"
        let process = try ManagedProcess(
            name: "python-unittest", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-m", "unittest", "discover", "-s", directory.path, "-v"],
            environment: environment)
        guard let status = process.waitForExit(timeout: .seconds(240)) else {
            process.stop(grace: .seconds(5))
            Issue.record("\(command) did not exit within 240 s; output:\n\(process.output.joined(separator: "\n"))")
            throw PythonTestError.hung(command)
        }
        // unittest's summary: "OK", "OK (skipped=1)" or "FAILED (…)".
        let isSummary: (String) -> Bool = { $0 == "OK" || $0.hasPrefix("OK (") || $0.hasPrefix("FAILED (") }
        _ = process.waitForLine(timeout: .seconds(5), where: isSummary)
        let lines = process.output
        let transcript = lines.joined(separator: "\n")
        let summary = lines.last(where: isSummary)
        #expect(status == 0 && summary == "OK",
                "\(command) exited with status \(status), saying '\(summary ?? "nothing")' (not a plain OK); output:\n\(transcript)")
        guard status == 0 && summary == "OK" else { return }
        for module in modules {
            #expect(lines.contains { $0.contains("(\(module).") }, "no test of \(module) ran; output:\n\(transcript)")
        }
        let ran = lines.first { $0.hasPrefix("Ran ") }
        #expect(ran.map { Int($0.split(separator: " ")[1]) ?? 0 } ?? 0 >= minimumTests,
                "fewer than \(minimumTests) tests ran (\(ran ?? "no 'Ran N tests' line")); output:\n\(transcript)")
    }
}
