import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// What the browser test needs: Debian's `chromium` and `chromium-driver`, and Selenium
/// (scripts/ensure-deps.sh --python installs them; in CI a missing one fails the test).
enum BrowserTools {
    static let chromium = OpenAPITools.which("chromium")
    static let chromedriver = OpenAPITools.which("chromedriver")
    static let selenium: Bool = {
        guard let process = try? ManagedProcess(name: "python3", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                                arguments: ["python3", "-c", "import selenium"]) else { return false }
        return process.waitForExit(timeout: .seconds(30)) == 0
    }()
    static let runs = (chromium != nil && chromedriver != nil && selenium) || OpenAPITools.inCI
}

/// The dashboard in a real browser (docs/GATEWAY.md, "Dashboard"): headless Chromium signs in,
/// reads the page twice while a batch runs and checks the numbers change and match
/// `conveyor stats`, pauses and resumes a name, purges and requeues dead letters, and saves a
/// screenshot; a read-only token sees the actions disabled and refused, and actions without the
/// CSRF token or from another origin are refused (Tests/Support/dashboard/browser.py).
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DashboardBrowserTests {
    private func cli(_ cluster: Cluster, _ arguments: [String]) throws -> (Int32?, [String]) {
        let process = try ManagedProcess(name: "cli", executable: cluster.executable, arguments: arguments + ["--broker", cluster.frontend])
        let status = process.waitForExit(timeout: .seconds(60))
        _ = process.waitForLine(timeout: .milliseconds(200)) { _ in false }
        return (status, process.output)
    }

    @Test("headless Chromium: the live numbers match conveyor stats and change; pause, resume, purge and requeue work from the page; read-only and cross-site actions are refused",
          .enabled(if: BrowserTools.runs, "chromium, chromium-driver or selenium is missing (bash scripts/ensure-deps.sh --python installs them); CI installs them"))
    func dashboardInABrowser() async throws {
        #expect(BrowserTools.chromium != nil && BrowserTools.chromedriver != nil && BrowserTools.selenium,
                "chromium, chromedriver and selenium must be installed: bash scripts/ensure-deps.sh --python")
        try await withGateway(consumers: 1, threads: 2) { cluster, gateway in
            // Two dead letters: `fail` twice each with --attempts 2.
            for n in 0..<3 {
                let submitted = try cli(cluster, ["submit", "fail", #"{"message":"broken \#(n)"}"#, "--attempts", "2", "--id", "dead-\(n)", "--no-wait"])
                #expect(submitted.0 == 0, "\(submitted.1)")
            }
            // A batch of about 45 s on 2 threads, submitted without waiting.
            let input = gateway.directory + "/sleeps.ndjson"
            try String(repeating: #"{"ms":30}"# + "\n", count: 3_000).write(toFile: input, atomically: true, encoding: .utf8)
            let batch = try cli(cluster, ["submit", "sleep", "--input", input, "--no-wait"])
            #expect(batch.0 == 0, "\(batch.1.suffix(5))")

            let screenshot = ProcessInfo.processInfo.environment["CONVEYOR_SCREENSHOT"] ?? gateway.directory + "/dashboard.png"
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Support/dashboard/browser.py").path
            let driver = try ManagedProcess(name: "browser", executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: [
                "python3", script, "--url", "http://127.0.0.1:\(gateway.port)", "--admin-token", GatewayProcess.other,
                "--reader-token", GatewayProcess.reader, "--conveyor", cluster.executable.path, "--broker", cluster.frontend,
                "--screenshot", screenshot,
            ])
            let status = driver.waitForExit(timeout: .seconds(180))
            if status == nil { _ = driver.stop(grace: .seconds(2)) }
            _ = driver.waitForLine(timeout: .milliseconds(300)) { _ in false }
            let output = driver.output.joined(separator: "\n")
            #expect(status == 0, "the browser's checks: \(output)")
            #expect(output.contains("all checks passed"), "\(output)")
            #expect(FileManager.default.fileExists(atPath: screenshot), "a screenshot at \(screenshot)")
        }
    }
}
