import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// Whether python3 has what examples/flask-app needs (scripts/ensure-deps.sh --python installs it).
enum FlaskExample {
    /// examples/flask-app: app.py and its test, test_app.py.
    static let directory = PythonSupport.repositoryRoot.appendingPathComponent("examples/flask-app")

    /// python3 imports flask and standardwebhooks.
    static let available: Bool = {
        guard let probe = try? ManagedProcess(
            name: "flask-probe", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-c", "import flask, standardwebhooks"]) else { return false }
        guard let status = probe.waitForExit(timeout: .seconds(30)) else {
            probe.stop(grace: .seconds(1))
            return false
        }
        return status == 0
    }()

    static let inCI = ProcessInfo.processInfo.environment["CI"] != nil
    /// Run when both are installed, and always in CI (where a missing module is a failure, not a skip).
    static let runs = available || inCI
}

/// The Flask example (examples/flask-app) end to end over real HTTP: its own test, test_app.py
/// (the standard library's unittest), starts a broker, a consumer, the gateway with a webhook
/// secret and `--callback-allow 127.0.0.1`, and app.py under `flask run`, all from the built
/// executable passed in CONVEYOR_BIN; posts jobs to the app, waits for the signed callbacks to
/// deliver their results, and sends forged callbacks that must be refused. It fails with
/// unittest's output when any test fails or is skipped.
@Suite("Flask example", .serialized, .timeLimit(.minutes(5)))
struct FlaskExampleTests {
    /// The test module; it must have run (a module that is not found would silently run nothing).
    static let module = "test_app"

    @Test("python3 -m unittest discover -s examples/flask-app passes with CONVEYOR_BIN, nothing skipped",
          .enabled(if: FlaskExample.runs, "flask or standardwebhooks is not installed (pip install flask standardwebhooks, or bash scripts/ensure-deps.sh --python); CI installs them"))
    func unittestSuite() throws {
        guard FlaskExample.available else {
            Issue.record("""
                The Flask example's test needs python3 with flask and standardwebhooks; \
                `python3 -c 'import flask, standardwebhooks'` failed. \
                Install them with `pip install flask standardwebhooks` (bash scripts/ensure-deps.sh --python does).
                """)
            return
        }
        let conveyor = try Cluster.locateExecutable()
        let environment = ["CONVEYOR_BIN": conveyor.path, "PYTHONUNBUFFERED": "1"]
        let command = "python3 -m unittest discover -s \(FlaskExample.directory.path) -v"
        let process = try ManagedProcess(
            name: "flask-unittest", executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-m", "unittest", "discover", "-s", FlaskExample.directory.path, "-v"],
            environment: environment)
        guard let status = process.waitForExit(timeout: .seconds(240)) else {
            process.stop(grace: .seconds(5))
            Issue.record("\(command) did not exit within 240 s; output:\n\(process.output.joined(separator: "\n"))")
            throw PythonTestError.hung("python3 -m unittest discover -s examples/flask-app")
        }
        // unittest's summary: "OK", "OK (skipped=1)" or "FAILED (…)".
        let isSummary: (String) -> Bool = { $0 == "OK" || $0.hasPrefix("OK (") || $0.hasPrefix("FAILED (") }
        _ = process.waitForLine(timeout: .seconds(5), where: isSummary)
        let lines = process.output
        let transcript = lines.joined(separator: "\n")
        let summary = lines.last(where: isSummary)
        // One issue with the whole output for a failure, an error or a skip.
        #expect(status == 0 && summary == "OK",
                "\(command) exited with status \(status), saying '\(summary ?? "nothing")' (not a plain OK); output:\n\(transcript)")
        guard status == 0 && summary == "OK" else { return }
        #expect(lines.contains { $0.contains("(\(Self.module).") }, "no test of \(Self.module) ran; output:\n\(transcript)")
        let ran = lines.first { $0.hasPrefix("Ran ") }
        #expect(ran.map { Int($0.split(separator: " ")[1]) ?? 0 } ?? 0 >= 4,
                "fewer than 4 tests ran (\(ran ?? "no 'Ran N tests' line")); output:\n\(transcript)")
    }
}
