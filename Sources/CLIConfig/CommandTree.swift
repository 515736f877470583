import Foundation

/// One command of the program, as its argument parser describes it (the JSON of
/// `--experimental-dump-help`, swift-argument-parser's ToolInfoV0), reduced to what configuration
/// needs: which long options it has, and how each takes its value.
public struct CommandSpec: Sendable {
    /// Command names below the root: `[]` for the root, `["journal", "verify"]`.
    public var path: [String]
    public var aliases: [String]
    public var defaultSubcommand: String?
    /// The options that can come from the environment or a config file, in the order of `--help`.
    public var options: [OptionSpec]
    /// Every named argument's spelling (`--broker`, `-h`, `--no-x`, hidden ones too) and whether it
    /// takes a value, to find on a command line which options it gives.
    public var spellings: [String: Spelling]
    public var subcommands: [CommandSpec]

    public struct Spelling: Sendable, Equatable {
        /// The option's key (its positive long name), or `nil` for one no config sets (`--help`).
        public var key: String?
        public var takesValue: Bool
        /// Its value may start with `-` (swift-argument-parser's `.unconditional`).
        public var unconditional: Bool
        /// What giving it means for a flag: `false` for the `--no-x` of an inversion pair.
        public var flagValue: Bool
    }

    /// `conveyor journal verify`.
    public var displayName: String { (["conveyor"] + path).joined(separator: " ") }

    /// The command at `path` below this one.
    public func command(at path: [String]) -> CommandSpec? {
        guard let first = path.first else { return self }
        return subcommand(named: first)?.command(at: Array(path.dropFirst()))
    }

    public func subcommand(named name: String) -> CommandSpec? {
        subcommands.first { $0.path.last == name || $0.aliases.contains(name) }
    }

    /// This command and every one below it, depth first.
    public var allCommands: [CommandSpec] {
        [self] + subcommands.flatMap(\.allCommands)
    }

    public func option(_ key: String) -> OptionSpec? {
        options.first { $0.key == key }
    }
}

/// An option that the environment or a config file can set.
public struct OptionSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `--name VALUE`.
        case value
        /// `--name`, on or off.
        case flag
        /// `--name` given N times.
        case counter
        /// `--name` / `--no-name` (or `--enable-x` / `--disable-x`): the spelling that turns it off.
        case inversion(negative: String)
    }

    /// The long name without dashes (`max-queued`): the config file's key.
    public var key: String
    /// As typed: `--max-queued` (or `-name` for a single-dash long name).
    public var spelling: String
    public var kind: Kind
    /// A value option that may be given more than once (an array).
    public var repeating: Bool
    /// The default as `--help` shows it; for flags `true` or `false`; `nil` where there is none.
    public var defaultValue: String?
    public var valueName: String?
    public var abstract: String?

    /// `CONVEYOR_` and the long name upper-cased, `-` as `_`: `CONVEYOR_MAX_QUEUED`.
    public var environmentName: String { Self.environmentName(forKey: key) }

    public static func environmentName(forKey key: String) -> String {
        "CONVEYOR_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Whether it is on/off rather than given a value.
    public var isBoolean: Bool {
        switch kind {
        case .flag, .inversion: true
        case .value, .counter: false
        }
    }
}

/// Reading the argument parser's description of the program.
public enum CommandTree {
    /// Options that are never configured: the parser's own.
    static let parserOwn: Set<String> = ["help", "version", "experimental-dump-help", "generate-completion-script"]

    /// The root command described by `json` (the output of `--experimental-dump-help`), without the
    /// parser's synthesized `help` subcommand.
    public static func decode(_ json: String) throws -> CommandSpec {
        let info = try JSONDecoder().decode(ToolInfo.self, from: Data(json.utf8))
        return spec(info.command, path: [])
    }

    private static func spec(_ command: ToolInfo.Command, path: [String]) -> CommandSpec {
        let arguments = command.arguments ?? []
        var options: [OptionSpec] = []
        var spellings: [String: CommandSpec.Spelling] = [:]
        let flagNames = Set(arguments.filter { $0.kind == "flag" }.flatMap { $0.longNames })

        /// The positive name whose pair `name` is the negative of, if it is one.
        func positive(ofNegative name: String) -> String? {
            if name.hasPrefix("no-"), flagNames.contains(String(name.dropFirst(3))) { return String(name.dropFirst(3)) }
            if name.hasPrefix("disable-"), flagNames.contains("enable-" + name.dropFirst(8)) { return "enable-" + name.dropFirst(8) }
            return nil
        }

        for argument in arguments where argument.kind != "positional" {
            let names = argument.names ?? []
            let long = names.first { $0.kind == "long" || $0.kind == "longWithSingleDash" }
            let negativeOf = long.flatMap { argument.kind == "flag" ? positive(ofNegative: $0.name) : nil }
            let key = negativeOf ?? long?.name
            let configurable = key.map { !parserOwn.contains($0) } ?? false
            for name in names {
                spellings[name.spelling] = .init(
                    key: configurable ? key : nil, takesValue: argument.kind == "option",
                    unconditional: argument.parsingStrategy == "unconditional", flagValue: negativeOf == nil)
            }
            // The `--no-x` half of a pair is part of its `--x`; hidden options stay internal.
            guard configurable, negativeOf == nil, argument.shouldDisplay, let long, let key else { continue }
            let kind: OptionSpec.Kind
            var defaultValue = argument.defaultValue
            if argument.kind == "option" {
                kind = .value
            } else if let negative = arguments.lazy.flatMap({ $0.longNames }).first(where: { positive(ofNegative: $0) == key }) {
                kind = .inversion(negative: long.prefix + negative)
                defaultValue = argument.defaultValue.map { $0 == long.spelling ? "true" : "false" }
            } else if argument.isRepeating {
                kind = .counter
                defaultValue = "0"
            } else {
                kind = .flag
                defaultValue = "false"
            }
            options.append(OptionSpec(
                key: key, spelling: long.spelling, kind: kind, repeating: argument.kind == "option" && argument.isRepeating,
                defaultValue: defaultValue, valueName: argument.valueName, abstract: argument.abstract))
        }
        let subcommands = (command.subcommands ?? [])
            .filter { !(path.isEmpty && $0.commandName == "help") }
            .map { spec($0, path: path + [$0.commandName]) }
        return CommandSpec(path: path, aliases: command.aliases ?? [], defaultSubcommand: command.defaultSubcommand,
                           options: options, spellings: spellings, subcommands: subcommands)
    }
}

/// The part of swift-argument-parser's ToolInfoV0 read here (its own module is not a product).
struct ToolInfo: Decodable {
    struct Command: Decodable {
        var commandName: String
        var aliases: [String]?
        var defaultSubcommand: String?
        var subcommands: [Command]?
        var arguments: [Argument]?
    }

    struct Argument: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
            var prefix: String { kind == "short" || kind == "longWithSingleDash" ? "-" : "--" }
            var spelling: String { prefix + name }
        }

        var kind: String
        var shouldDisplay: Bool
        var isRepeating: Bool
        var parsingStrategy: String?
        var names: [Name]?
        var valueName: String?
        var defaultValue: String?
        var abstract: String?

        var longNames: [String] {
            (names ?? []).filter { $0.kind == "long" || $0.kind == "longWithSingleDash" }.map(\.name)
        }
    }

    var command: Command
}
