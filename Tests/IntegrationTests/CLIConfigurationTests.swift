import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

/// Options from the environment and a config file, as a user sets them: the built `conveyor`
/// against a real broker, each answer checked for its message, its exit status and its speed.
@Suite("CLI configuration", .serialized, .timeLimit(.minutes(5)))
struct CLIConfigurationTests {
    /// Where nothing listens: a submit that goes there exits 69 at once, naming it.
    private static let nobody = "tcp://127.0.0.1:9"

    /// Runs `conveyor` with `arguments` and `environment` (added to this process's); returns its
    /// exit status (`nil`: still running after `timeout`), its output (both streams) and how long it took.
    private func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(20))
        throws -> (status: Int32?, output: [String], took: Duration) {
        let started = ContinuousClock.now
        let process = try ManagedProcess(name: "cli", executable: try Cluster.locateExecutable(), arguments: arguments,
                                         environment: environment)
        let status = process.waitForExit(timeout: timeout)
        let took = started.duration(to: .now)
        // Let the reader deliver the last lines.
        _ = process.waitForLine(timeout: .milliseconds(300)) { _ in false }
        if status == nil { process.stop() }
        return (status, process.output, took)
    }

    /// A config file with `text`; the caller removes it.
    private func configFile(_ text: String, name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-\(name)-\(getpid()).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func broker() -> Cluster.Options {
        .init(consumers: 1, threads: 1, brokerArguments: ["--in-memory"])
    }

    @Test("CONVEYOR_BROKER sets the broker: a submit without --broker reaches a real broker and gets its result")
    func environmentSetsTheBroker() async throws {
        try await withCluster(broker()) { cluster in
            let (status, output, took) = try run(["submit", "echo", #"{"n":7}"#], environment: ["CONVEYOR_BROKER": cluster.frontend])
            #expect(status == 0, "\(output)")
            #expect(output.contains(#"{"n":7}"#), "\(output)")
            #expect(took < .seconds(5))
        }
    }

    @Test("the file's value is used when the environment has none; the environment beats the file; a flag beats both")
    func precedence() async throws {
        try await withCluster(broker()) { cluster in
            let good = try configFile("broker = \"\(cluster.frontend)\"\n", name: "good")
            let bad = try configFile("# nothing listens there\n[submit]\nbroker = \"\(Self.nobody)\"\n", name: "bad")
            defer {
                try? FileManager.default.removeItem(atPath: good)
                try? FileManager.default.removeItem(atPath: bad)
            }

            var (status, output, took) = try run(["submit", "echo", #"{"from":"file"}"#, "--config", good])
            #expect(status == 0, "the file's broker: \(output)")
            #expect(output.contains(#"{"from":"file"}"#), "\(output)")
            #expect(took < .seconds(5))

            (status, output, took) = try run(["submit", "echo", "{}"], environment: ["CONVEYOR_CONFIG": bad])
            #expect(status == 69, "CONVEYOR_CONFIG names the file, whose broker is not there: \(output)")
            #expect(output.contains { $0.contains("cannot reach a broker at \(Self.nobody)") }, "\(output)")
            #expect(took < .seconds(5))

            (status, output, took) = try run(["submit", "echo", #"{"from":"env"}"#],
                                             environment: ["CONVEYOR_CONFIG": bad, "CONVEYOR_BROKER": cluster.frontend])
            #expect(status == 0, "the environment beats the file: \(output)")
            #expect(output.contains(#"{"from":"env"}"#), "\(output)")
            #expect(took < .seconds(5))

            (status, output, took) = try run(["submit", "echo", #"{"from":"flag"}"#, "--broker", cluster.frontend],
                                             environment: ["CONVEYOR_CONFIG": bad, "CONVEYOR_BROKER": Self.nobody])
            #expect(status == 0, "the flag beats the environment: \(output)")
            #expect(output.contains(#"{"from":"flag"}"#), "\(output)")
            #expect(took < .seconds(5))
        }
    }

    @Test("a bad value from the environment or the file is refused naming where it came from, exit 64")
    func badValuesNameTheirSource() throws {
        var (status, output, took) = try run(["submit", "echo", "{}"], environment: ["CONVEYOR_BROKER": "5555"])
        #expect(status == 64, "\(output)")
        #expect(output.contains { $0.hasPrefix("error: CONVEYOR_BROKER=5555 (from the environment): --broker must look like tcp://HOST:PORT") },
                "\(output)")
        #expect(took < .seconds(5))

        let file = try configFile("\n[broker]\nmax-queued = \"lots\"\n", name: "badvalue")
        defer { try? FileManager.default.removeItem(atPath: file) }
        (status, output, took) = try run(["broker", "--in-memory", "--config", file])
        #expect(status == 64, "\(output)")
        #expect(output.contains { $0.hasPrefix(#"error: max-queued = "lots" (from \#(file):3): The value 'lots' is invalid for '--max-queued"#) },
                "\(output)")
        #expect(took < .seconds(5))

        (status, output, took) = try run(["broker", "--in-memory"], environment: ["CONVEYOR_JOURNAL_REPAIR": "maybe"])
        #expect(status == 64, "\(output)")
        #expect(output.contains("error: CONVEYOR_JOURNAL_REPAIR=maybe (from the environment): --journal-repair is a flag: give true or false (or 1/0, yes/no)"),
                "\(output)")
        #expect(took < .seconds(5))
    }

    @Test("an unknown key or section in the file is refused naming it and its line, exit 64; --help still works")
    func unknownKeys() throws {
        let file = try configFile("broker = \"tcp://127.0.0.1:5555\"\n\n[submit]\nbrokr = \"tcp://127.0.0.1:5555\"\n", name: "unknown")
        defer { try? FileManager.default.removeItem(atPath: file) }
        var (status, output, took) = try run(["status", "some-id"], environment: ["CONVEYOR_CONFIG": file])
        #expect(status == 64, "refused whichever command runs: \(output)")
        #expect(output.contains("error: \(file):4: unknown key brokr in [submit]: conveyor submit has no option --brokr (did you mean broker?)"),
                "\(output)")
        #expect(took < .seconds(5))

        let sections = try configFile("[sumbit]\n", name: "section")
        defer { try? FileManager.default.removeItem(atPath: sections) }
        (status, output, took) = try run(["submit", "echo", "--config", sections])
        #expect(status == 64, "\(output)")
        #expect(output.contains { $0.hasPrefix("error: \(sections):1: [sumbit] names no conveyor command") }, "\(output)")
        #expect(took < .seconds(5))

        (status, output, took) = try run(["submit", "--help"], environment: ["CONVEYOR_CONFIG": file])
        #expect(status == 0, "\(output)")
        #expect(output.contains { $0.hasPrefix("USAGE: conveyor submit") }, "\(output)")
        #expect(took < .seconds(5))

        (status, output, took) = try run(["--version"], environment: ["CONVEYOR_CONFIG": file, "CONVEYOR_BROKER": "5555"])
        #expect(status == 0 && output.contains { $0.hasPrefix("0.") }, "\(output)")
        #expect(took < .seconds(5))

        (status, output, took) = try run(["submit", "echo", "--config", "/nonexistent/conveyor.toml"])
        #expect(status == 64, "\(output)")
        #expect(output.contains("error: cannot read the config file /nonexistent/conveyor.toml (named by --config): no such file"), "\(output)")
        #expect(took < .seconds(5))
    }

    @Test("a CONVEYOR_ variable that names no option is a warning, and the command runs")
    func unknownVariableWarns() async throws {
        try await withCluster(broker()) { cluster in
            let (status, output, took) = try run(["submit", "echo", #"{"n":1}"#],
                                                 environment: ["CONVEYOR_BROKER": cluster.frontend, "CONVEYOR_MAX_QUEUD": "5"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("warning: CONVEYOR_MAX_QUEUD is set in the environment but names no option of any conveyor command; it is ignored (did you mean CONVEYOR_MAX_QUEUED?)"),
                    "\(output)")
            #expect(took < .seconds(5))
        }
    }

    @Test("config show prints each option's value and source: flag, env NAME, file PATH:LINE, default; and as JSON")
    func configShow() throws {
        let file = try configFile("broker = \"tcp://10.0.0.5:5555\"\n[submit]\nwindow = 7\n", name: "show")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let environment = ["CONVEYOR_REQUEST_TIMEOUT": "3", "CONVEYOR_CONFIG": file]
        var (status, output, took) = try run(["config", "show", "submit", "--priority", "2"], environment: environment)
        #expect(status == 0, "\(output)")
        #expect(took < .seconds(5))
        #expect(output.first == "config file: \(file) (named by CONVEYOR_CONFIG)", "\(output)")
        #expect(output.contains("conveyor submit"))
        func row(_ option: String) -> [String] {
            output.first { $0.hasPrefix("  \(option) ") }?.split(separator: " ").map(String.init) ?? []
        }
        #expect(row("--priority") == ["--priority", "2", "flag"])
        #expect(row("--request-timeout") == ["--request-timeout", "3", "env", "CONVEYOR_REQUEST_TIMEOUT"])
        #expect(row("--broker") == ["--broker", "tcp://10.0.0.5:5555", "file", "\(file):1"])
        #expect(row("--window") == ["--window", "7", "file", "\(file):3"])
        #expect(row("--timeout") == ["--timeout", "300.0", "default"])
        #expect(row("--id") == ["--id", "(none)", "default"])
        // Aligned: every row's value starts in the same column.
        let rows = output.filter { $0.hasPrefix("  --") }
        let valueColumns = Set(rows.map { row -> Int in
            let name = row.dropFirst(2).prefix { $0 != " " }
            return 2 + name.count + row.dropFirst(2 + name.count).prefix { $0 == " " }.count
        })
        #expect(rows.count > 10 && valueColumns.count == 1, "\(rows)")

        // --json after a command that has none is config show's own.
        (status, output, took) = try run(["config", "show", "submit", "--priority", "2", "--json"], environment: environment)
        #expect(status == 0, "\(output)")
        #expect(took < .seconds(5))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.joined(separator: "\n").utf8)) as? [String: Any])
        #expect((json["configFile"] as? [String: Any])?["namedBy"] as? String == "CONVEYOR_CONFIG")
        let options = try #require(((json["commands"] as? [[String: Any]])?.first)?["options"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: options.map { ($0["option"] as! String, $0) })
        #expect(byName["--priority"]?["source"] as? String == "flag")
        #expect(byName["--request-timeout"]?["source"] as? String == "env")
        #expect(byName["--request-timeout"]?["variable"] as? String == "CONVEYOR_REQUEST_TIMEOUT")
        #expect(byName["--window"]?["source"] as? String == "file")
        #expect(byName["--window"]?["line"] as? Int == 3)
        #expect(byName["--window"]?["value"] as? String == "7")
        #expect(byName["--id"]?["value"] is NSNull)
        #expect(byName["--broker"]?["environment"] as? String == "CONVEYOR_BROKER")

        (status, output, took) = try run(["config", "show", "sumbit"], environment: environment)
        #expect(status == 64, "\(output)")
        #expect(output.contains { $0.hasPrefix("error: sumbit is not a conveyor command (commands: broker, consumer, submit") }, "\(output)")
        #expect(took < .seconds(5))

        (status, output, took) = try run(["config", "show"], environment: environment)
        #expect(status == 0, "\(output)")
        for command in ["conveyor broker", "conveyor consumer", "conveyor submit", "conveyor stats", "conveyor bench", "conveyor config show"] {
            #expect(output.contains(command), "every command: \(command)")
        }
        #expect(took < .seconds(5))
    }

    @Test("CONVEYOR_BACKEND and CONVEYOR_PROCESSES=2 start a consumer supervisor with 2 children, which do not supervise again")
    func consumerFromTheEnvironment() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--in-memory"])) { cluster in
            let consumer = try ManagedProcess(
                name: "consumer", executable: cluster.executable, arguments: ["consumer", "--threads", "1"],
                environment: ["CONVEYOR_BACKEND": cluster.backend, "CONVEYOR_PROCESSES": "2"])
            defer { consumer.stop() }
            try await cluster.waitForConsumers(2, timeout: .seconds(20))
            try await Task.sleep(for: .seconds(2))
            #expect(try await cluster.stats().consumers.count == 2, "two children, not two supervisors of two each")
        }
    }
}
