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
        try PythonSupport.runUnittest(in: FlaskExample.directory, environment: environment, modules: [Self.module], minimumTests: 4)
    }
}
