import ConveyorCLIConfig
import Foundation
import Testing

/// Options from the environment and the file, put on the command line: precedence, flags, lists,
/// refusals, and what the argument parser's description is read as.
@Suite struct LayeringTests {
    /// A command line tool as `--experimental-dump-help` describes it.
    static let toolJSON: String = {
        func name(_ kind: String, _ name: String) -> [String: Any] { ["kind": kind, "name": name] }
        func option(_ long: String, default value: String? = nil, repeating: Bool = false, hidden: Bool = false,
                    short: String? = nil) -> [String: Any] {
            var names = [name("long", long)]
            if let short { names.insert(name("short", short), at: 0) }
            var argument: [String: Any] = ["kind": "option", "shouldDisplay": !hidden, "isOptional": true, "isRepeating": repeating,
                                           "parsingStrategy": "default", "names": names, "valueName": long, "abstract": "The \(long)."]
            if let value { argument["defaultValue"] = value }
            return argument
        }
        func flag(_ long: String, default value: String? = nil, repeating: Bool = false, short: String? = nil) -> [String: Any] {
            var argument = option(long, default: value, repeating: repeating, short: short)
            argument["kind"] = "flag"
            return argument
        }
        let help = flag("help", short: "h")
        let version = flag("version")
        func command(_ name: String, _ arguments: [[String: Any]], _ subcommands: [[String: Any]] = []) -> [String: Any] {
            ["commandName": name, "arguments": arguments + [version, help], "subcommands": subcommands]
        }
        let positional: [String: Any] = ["kind": "positional", "shouldDisplay": true, "isOptional": false, "isRepeating": false,
                                         "parsingStrategy": "default", "valueName": "name"]
        let submit = command("submit", [
            positional, option("broker", default: "tcp://127.0.0.1:5555"), option("max-queued", default: "10"),
            option("tag", repeating: true), option("input", short: "i"), flag("no-wait"), flag("color", default: "--color"),
            flag("no-color"), flag("verbose", repeating: true, short: "v"), option("priority", default: "0"),
        ])
        let consumer = command("consumer", [option("backend", default: "tcp://127.0.0.1:5556"), option("processes", default: "1"),
                                            option("process-index", hidden: true)])
        let journal = command("journal", [], [command("verify", [positional, flag("deep")])])
        let root = command("tool", [option("config")], [submit, consumer, journal, command("help", [])])
        let data = try! JSONSerialization.data(withJSONObject: ["serializationVersion": 0, "command": root])
        return String(decoding: data, as: UTF8.self)
    }()

    private func layering() throws -> Layering {
        var layering = Layering(root: try CommandTree.decode(Self.toolJSON))
        layering.notFilled = [.init(command: ["consumer"], whenGiven: "process-index", keys: ["processes"])]
        return layering
    }

    private func resolve(_ arguments: [String], environment: [String: String] = [:], file: String? = nil) throws(ConfigError)
        -> Layering.Resolution {
        let env = file == nil ? environment : environment.merging(["CONVEYOR_CONFIG": "c.toml"]) { a, _ in a }
        let layering: Layering
        do { layering = try self.layering() } catch { throw ConfigError("\(error)") }
        return try layering.resolve(arguments, environment: env) { _ throws(ConfigError) in file ?? "" }
    }

    private func refusal(_ arguments: [String], environment: [String: String] = [:], file: String? = nil) -> String {
        do {
            _ = try resolve(arguments, environment: environment, file: file)
            return "accepted"
        } catch {
            return error.message
        }
    }

    private func setting(_ resolution: Layering.Resolution, _ key: String) -> Layering.Setting? {
        resolution.settings.first { $0.option.key == key }
    }

    @Test("the description: long options only, pairs merged, counters, hidden and the parser's own left out, env names")
    func reading() throws {
        let root = try CommandTree.decode(Self.toolJSON)
        #expect(root.subcommands.map { $0.path } == [["submit"], ["consumer"], ["journal"]], "no synthesized help")
        let submit = try #require(root.command(at: ["submit"]))
        #expect(submit.options.map(\.key) == ["broker", "max-queued", "tag", "input", "no-wait", "color", "verbose", "priority"])
        #expect(submit.option("color")?.kind == .inversion(negative: "--no-color"))
        #expect(submit.option("color")?.defaultValue == "true")
        #expect(submit.option("no-wait")?.kind == .flag, "--no-wait alone is a flag, not the negative of a --wait")
        #expect(submit.option("verbose")?.kind == .counter)
        #expect(submit.option("tag")?.repeating == true)
        #expect(submit.option("max-queued")?.environmentName == "CONVEYOR_MAX_QUEUED")
        #expect(root.command(at: ["consumer"])?.option("process-index") == nil, "hidden")
        #expect(root.command(at: ["journal", "verify"])?.displayName == "conveyor journal verify")
    }

    @Test("precedence: flag over environment over file over default, per option")
    func precedence() throws {
        let file = """
            broker = "tcp://file:1"
            max-queued = 30
            priority = 3
            """
        let environment = ["CONVEYOR_BROKER": "tcp://env:1", "CONVEYOR_MAX_QUEUED": "20"]
        let resolution = try resolve(["submit", "echo", "--broker", "tcp://flag:1"], environment: environment, file: file)
        #expect(setting(resolution, "broker")?.source == .commandLine)
        #expect(setting(resolution, "broker")?.values == ["tcp://flag:1"])
        #expect(setting(resolution, "max-queued")?.source == .environment(name: "CONVEYOR_MAX_QUEUED"))
        #expect(setting(resolution, "priority")?.source == .file(path: "c.toml", line: 3))
        #expect(setting(resolution, "input")?.source == .defaultValue)
        #expect(setting(resolution, "input")?.values == [])
        #expect(resolution.arguments == ["submit", "--max-queued=20", "--priority=3", "echo", "--broker", "tcp://flag:1"])
        #expect(resolution.file == .init(path: "c.toml", namedBy: "CONVEYOR_CONFIG"))
    }

    @Test("the command's own section beats its parent's, which beats the top; other commands' sections do not apply")
    func sections() throws {
        let file = """
            deep = false
            [journal]
            deep = true
            [journal.verify]
            """
        let resolution = try resolve(["journal", "verify", "dir"], file: file)
        #expect(setting(resolution, "deep")?.source == .file(path: "c.toml", line: 3))
        #expect(resolution.arguments == ["journal", "verify", "--deep", "dir"])
        let other = try resolve(["journal", "verify", "dir"], file: "deep = false\n[journal.verify]\ndeep = false")
        #expect(setting(other, "deep")?.source == .file(path: "c.toml", line: 3))
        #expect(other.arguments == ["journal", "verify", "dir"], "off: no word")
        let shared = "priority = 1\n[consumer]\nprocesses = 3"
        #expect(try resolve(["submit"], file: shared).arguments == ["submit", "--priority=1"])
        #expect(try resolve(["consumer"], file: shared).arguments == ["consumer", "--processes=3"])
    }

    @Test("--config FILE (anywhere before --) beats CONVEYOR_CONFIG and is taken off the command line")
    func configOption() throws {
        var named: [String] = []
        let resolution = try layering().resolve(["submit", "--config", "mine.toml", "x", "--", "--config", "y"],
                                                environment: ["CONVEYOR_CONFIG": "env.toml"]) { origin throws(ConfigError) in
            named.append(origin.path)
            return "max-queued = 5"
        }
        #expect(named == ["mine.toml"])
        #expect(resolution.file == .init(path: "mine.toml", namedBy: "--config"))
        #expect(resolution.arguments == ["submit", "--max-queued=5", "x", "--", "--config", "y"])
        let equals = try layering().resolve(["--config=a.toml", "submit"], environment: [:]) { _ throws(ConfigError) in "" }
        #expect(equals.file?.path == "a.toml")
        #expect(refusal(["submit", "--config"]).hasPrefix("--config needs a FILE"))
    }

    @Test("flags from true/false/1/0/yes/no; an inversion pair's off is its --no- spelling; a counter is a count")
    func flags() throws {
        for (text, words) in [("true", ["--no-wait"]), ("1", ["--no-wait"]), ("YES", ["--no-wait"]), ("false", []), ("0", []), ("no", [])] {
            #expect(try resolve(["submit"], environment: ["CONVEYOR_NO_WAIT": text]).arguments == ["submit"] + words, "\(text)")
        }
        #expect(try resolve(["submit"], environment: ["CONVEYOR_COLOR": "false"]).arguments == ["submit", "--no-color"])
        #expect(try resolve(["submit"], file: "color = true").arguments == ["submit", "--color"])
        #expect(try resolve(["submit"], environment: ["CONVEYOR_VERBOSE": "2"]).arguments == ["submit", "--verbose", "--verbose"])
        #expect(try resolve(["submit"], file: "[submit]\nno-wait = \"yes\"").arguments == ["submit", "--no-wait"])
        let given = try resolve(["submit", "--no-color", "-vv"], environment: ["CONVEYOR_COLOR": "true", "CONVEYOR_VERBOSE": "1"])
        #expect(given.arguments == ["submit", "--no-color", "-vv"], "either half of the pair on the command line wins")
        #expect(setting(given, "color")?.values == ["false"])
        #expect(setting(given, "verbose")?.values == ["2"])
    }

    @Test("repeated options: a list in the file, comma-separated in the environment (\\, for a comma)")
    func lists() throws {
        #expect(try resolve(["submit"], file: "tag = [\"a\", \"b\"]").arguments == ["submit", "--tag=a", "--tag=b"])
        #expect(try resolve(["submit"], file: "tag = \"a\"").arguments == ["submit", "--tag=a"])
        #expect(try resolve(["submit"], environment: ["CONVEYOR_TAG": "a, b\\,c,,d"]).arguments
                == ["submit", "--tag=a", "--tag=b,c", "--tag=d"])
        #expect(try resolve(["submit", "--tag", "x"], environment: ["CONVEYOR_TAG": "a,b"]).arguments == ["submit", "--tag", "x"])
        #expect(refusal(["submit"], file: "[submit]\nbroker = [\"tcp://a:1\"]")
                == "c.toml:2: broker takes one value, not an array (--broker is given once)")
    }

    @Test("a value that looks like an option still reaches it, as --name=value")
    func dashValues() throws {
        #expect(try resolve(["submit"], environment: ["CONVEYOR_PRIORITY": "-5", "CONVEYOR_INPUT": "-"]).arguments
                == ["submit", "--input=-", "--priority=-5"])
        let given = try resolve(["submit", "--priority", "-5", "-i", "f", "--broker=tcp://b:1"])
        #expect(setting(given, "priority")?.values == ["-5"])
        #expect(setting(given, "input")?.values == ["f"])
        #expect(setting(given, "broker")?.values == ["tcp://b:1"])
    }

    @Test("a bad flag value names its variable or its file line")
    func badFlagValues() {
        #expect(refusal(["submit"], environment: ["CONVEYOR_NO_WAIT": "maybe"])
                == "CONVEYOR_NO_WAIT=maybe (from the environment): --no-wait is a flag: give true or false (or 1/0, yes/no)")
        #expect(refusal(["submit"], file: "\nno-wait = 2.5") == "c.toml:2: no-wait = 2.5: --no-wait is a flag: use true or false")
        #expect(refusal(["submit"], environment: ["CONVEYOR_VERBOSE": "-1"]).hasPrefix("CONVEYOR_VERBOSE=-1 (from the environment): --verbose is given a number of times"))
    }

    @Test("an unknown key or section in the file is refused with its line, whichever command runs")
    func unknownKeys() {
        #expect(refusal(["consumer"], file: "broker = \"x\"\nbrokr = \"x\"")
                == "c.toml:2: unknown key brokr: no conveyor command has an option --brokr (did you mean broker?)")
        #expect(refusal(["consumer"], file: "[submit]\nbackend = \"x\"")
                == "c.toml:2: unknown key backend in [submit]: conveyor submit has no option --backend")
        #expect(refusal(["consumer"], file: "[consumer]\nmax_queued = 1")
                == "c.toml:2: unknown key max_queued in [consumer]: conveyor consumer has no option --max_queued")
        #expect(refusal(["consumer"], file: "max_queued = 1").hasSuffix("(did you mean max-queued?)"))
        #expect(refusal(["consumer"], file: "[journal]\ndeep = true\nspeed = 1")
                == "c.toml:3: unknown key speed in [journal]: conveyor journal has no option --speed")
        #expect(refusal(["consumer"], file: "\n[sumbit]").hasPrefix("c.toml:2: [sumbit] names no conveyor command"))
        #expect(refusal(["consumer"], file: "[journal.check]").hasPrefix("c.toml:1: [journal.check] names no conveyor command"))
        #expect(refusal(["consumer"], file: "config = \"other.toml\"").hasPrefix("c.toml:1: config cannot be set in a config file"))
        #expect(refusal(["consumer"], file: "[consumer]\nprocess-index = 1").hasPrefix("c.toml:2: unknown key process-index"), "hidden")
    }

    @Test("a CONVEYOR_ variable that names no option is a warning, not an error; Conveyor's own are not")
    func unknownEnvironment() throws {
        let resolution = try resolve(["consumer"], environment: [
            "CONVEYOR_BROKR": "x", "CONVEYOR_BROKER": "tcp://h:1", "CONVEYOR_BIN": "/bin/conveyor",
            "CONVEYOR_GOLDEN_HELLO": "{}", "CONVEYOR_TEST_ECHO": "1", "OTHER": "x",
        ])
        #expect(resolution.warnings == [
            "CONVEYOR_BROKR is set in the environment but names no option of any conveyor command; it is ignored (did you mean CONVEYOR_BROKER?)",
        ])
        #expect(resolution.arguments == ["consumer"], "--broker is another command's option: not for consumer")
    }

    @Test("help, version and the parser's own requests pass through untouched, the file unread")
    func passThrough() throws {
        for arguments in [["submit", "--help"], ["-h"], ["--version"], ["--experimental-dump-help"], ["help", "submit"], [], ["nonsense"]] {
            let resolution = try layering().resolve(arguments, environment: ["CONVEYOR_BROKER": "x", "CONVEYOR_CONFIG": "c.toml"]) {
                _ throws(ConfigError) in throw ConfigError("read")
            }
            #expect(resolution.passedThrough, "\(arguments)")
            #expect(resolution.arguments == arguments)
        }
    }

    @Test("a supervised consumer child (--process-index) does not take --processes from the environment or the file")
    func supervisedChild() throws {
        let child = try resolve(["consumer", "--process-index", "0"], environment: ["CONVEYOR_PROCESSES": "4"])
        #expect(child.arguments == ["consumer", "--process-index", "0"])
        #expect(setting(child, "processes")?.source == .defaultValue)
        let parent = try resolve(["consumer"], environment: ["CONVEYOR_PROCESSES": "4"])
        #expect(parent.arguments == ["consumer", "--processes=4"])
    }

    @Test("without --config and CONVEYOR_ variables (but Conveyor's own that are no option) there is nothing to do")
    func mayApply() {
        #expect(!Layering.mayApply(to: ["submit", "x"], environment: ["PATH": "/bin", "CONVEYOR_BIN": "c", "CONVEYOR_GOLDEN_X": "1"]))
        #expect(Layering.mayApply(to: ["submit", "--config", "c.toml"], environment: [:]))
        #expect(Layering.mayApply(to: ["--config=c.toml", "submit"], environment: [:]))
        #expect(Layering.mayApply(to: ["submit"], environment: ["CONVEYOR_CONFIG": "c.toml"]))
        #expect(Layering.mayApply(to: ["submit"], environment: ["CONVEYOR_BROKR": "x"]), "to warn about it")
    }

    @Test("an empty environment variable counts as unset")
    func emptyVariable() throws {
        let resolution = try resolve(["submit"], environment: ["CONVEYOR_BROKER": ""], file: "broker = \"tcp://file:1\"")
        #expect(setting(resolution, "broker")?.source == .file(path: "c.toml", line: 1))
    }

    @Test("what a setting says about where it came from")
    func givenText() throws {
        let resolution = try resolve(["submit"], environment: ["CONVEYOR_BROKER": "5555"], file: "[submit]\nmax-queued = \"many\"")
        #expect(setting(resolution, "broker")?.given == "CONVEYOR_BROKER=5555 (from the environment)")
        #expect(setting(resolution, "max-queued")?.given == #"max-queued = "many" (from c.toml:2)"#)
        #expect(setting(resolution, "broker")?.source.description == "env CONVEYOR_BROKER")
        #expect(setting(resolution, "max-queued")?.source.description == "file c.toml:2")
        #expect(resolution.injected.map(\.option.key) == ["broker", "max-queued"])
    }
}
