import ArgumentParser
import ConveyorCLIConfig
import Foundation

/// `conveyor config`: the options that come from the environment and the config file.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Where each option's value comes from: the command line, the environment, the config file or its default.",
        subcommands: [ConfigShowCommand.self])
}

/// `conveyor config show [COMMAND [OPTIONS…]]`.
struct ConfigShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print every option of a command (or of every command) with its effective value and where it came from.",
        discussion: """
            Sources, strongest first: flag (given after COMMAND here), env CONVEYOR_NAME, \
            file PATH:LINE (the command's [section], then its parents', then the top), default. \
            Options of config show itself (--json) come before COMMAND.
            """)

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Argument(parsing: .captureForPassthrough,
              help: "A command (submit, or journal verify for a subcommand), then any of its options as you would give them.")
    var command: [String] = []

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let layering = ConfigLayer.layering()
        let (origin, _) = try explained { () throws(ConfigError) in
            try Layering.configFile(in: Array(CommandLine.arguments.dropFirst()), environment: environment)
        }
        let passConfig = origin.flatMap { $0.namedBy == "--config" ? ["--config", $0.path] : nil } ?? []
        var json = self.json
        var targets: [(CommandSpec, [String])] = []
        if command.isEmpty {
            targets = layering.root.allCommands.dropFirst().filter { !$0.options.isEmpty }.map { ($0, []) }
        } else {
            var target = layering.root
            var rest = command[...]
            while let word = rest.first, let next = target.subcommand(named: word) {
                target = next
                rest = rest.dropFirst()
            }
            guard !target.path.isEmpty else {
                let names = layering.root.subcommands.map { $0.path.last! }.joined(separator: ", ")
                throw ValidationError("\(command[0]) is not a conveyor command (commands: \(names))")
            }
            // `--json` after a command that has none is still this command's.
            if target.option("json") == nil, rest.contains("--json") {
                json = true
                rest.removeAll { $0 == "--json" }
            }
            targets = [(target, Array(rest))]
        }
        var reports: [CommandReport] = []
        for (target, arguments) in targets {
            let resolution = try explained { () throws(ConfigError) in
                try layering.resolve(target.path + arguments + passConfig, environment: environment, readFile: ConfigLayer.readFile)
            }
            reports.append(CommandReport(command: target.displayName, settings: resolution.settings))
        }
        if json {
            printLine(try Self.json(file: origin, reports: reports))
        } else {
            printLine(Self.text(file: origin, reports: reports))
        }
    }

    /// A config error as a usage error (exit 64).
    private func explained<T>(_ body: () throws(ConfigError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw ValidationError(error.message)
        }
    }

    struct CommandReport {
        var command: String
        var settings: [Layering.Setting]
    }

    static func shown(_ setting: Layering.Setting) -> String {
        setting.values.isEmpty ? "(none)" : setting.values.joined(separator: ", ")
    }

    static func text(file: Layering.FileOrigin?, reports: [CommandReport]) -> String {
        var lines = [file.map { "config file: \($0.path) (named by \($0.namedBy))" }
                     ?? "config file: none (no --config, and CONVEYOR_CONFIG is not set)"]
        for report in reports {
            lines.append("")
            lines.append(report.command)
            let names = report.settings.map(\.option.spelling)
            let values = report.settings.map(shown)
            let nameWidth = names.map(\.count).max() ?? 0
            let valueWidth = values.map(\.count).max() ?? 0
            for (index, setting) in report.settings.enumerated() {
                let name = names[index].padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                let value = values[index].padding(toLength: valueWidth, withPad: " ", startingAt: 0)
                lines.append("  \(name)  \(value)  \(setting.source)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func json(file: Layering.FileOrigin?, reports: [CommandReport]) throws -> String {
        let document = JSONReport(
            configFile: file.map { .init(path: $0.path, namedBy: $0.namedBy) },
            commands: reports.map { report in
                .init(command: report.command, options: report.settings.map(JSONReport.Option.init))
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }
}

/// What `config show --json` prints.
struct JSONReport: Encodable {
    struct File: Encodable {
        var path: String
        var namedBy: String
    }

    struct Command: Encodable {
        var command: String
        var options: [Option]
    }

    struct Option: Encodable {
        var option: String
        var key: String
        var environment: String
        /// `null`, a string, or for a repeated option an array.
        var value: [String]
        var repeating: Bool
        /// `flag`, `env`, `file` or `default`.
        var source: String
        var variable: String?
        var file: String?
        var line: Int?

        init(_ setting: Layering.Setting) {
            option = setting.option.spelling
            key = setting.option.key
            environment = setting.option.environmentName
            value = setting.values
            repeating = setting.option.repeating
            switch setting.source {
            case .commandLine: source = "flag"
            case .environment(let name): source = "env"; variable = name
            case .file(let path, let line): source = "file"; file = path; self.line = line
            case .defaultValue: source = "default"
            }
        }

        enum CodingKeys: String, CodingKey { case option, key, environment, value, source, variable, file, line }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(option, forKey: .option)
            try container.encode(key, forKey: .key)
            try container.encode(environment, forKey: .environment)
            if repeating {
                try container.encode(value, forKey: .value)
            } else if let first = value.first {
                try container.encode(first, forKey: .value)
            } else {
                try container.encodeNil(forKey: .value)
            }
            try container.encode(source, forKey: .source)
            try container.encodeIfPresent(variable, forKey: .variable)
            try container.encodeIfPresent(file, forKey: .file)
            try container.encodeIfPresent(line, forKey: .line)
        }
    }

    var configFile: File?
    var commands: [Command]

    enum CodingKeys: String, CodingKey { case configFile, commands }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if let configFile { try container.encode(configFile, forKey: .configFile) } else { try container.encodeNil(forKey: .configFile) }
        try container.encode(commands, forKey: .commands)
    }
}
