/// Where an option's value comes from, strongest first: the command line, then the environment
/// (`CONVEYOR_<LONG_NAME>`), then the config file (the command's section, its parents' sections,
/// then the top), then the option's default.
///
/// It works on the command line before the argument parser sees it: each option the command line
/// does not give but the environment or the file does is put on it, right after the command's
/// name, so the parser checks every value as if typed (and ``Setting/given`` says where it came
/// from when it refuses one). Positional arguments never come from either.
public struct Layering: Sendable {
    public let root: CommandSpec

    /// `CONVEYOR_*` variables that are not options but are still Conveyor's own (the test kit's and
    /// the Python client's golden tests'): no warning.
    public static let reservedEnvironment: Set<String> = ["CONVEYOR_CONFIG", "CONVEYOR_BIN", "CONVEYOR_TEST_ECHO"]
    public static let reservedEnvironmentPrefixes: [String] = ["CONVEYOR_GOLDEN_"]

    /// Whether `arguments` and `environment` can change anything: a `--config` on the command
    /// line, or a `CONVEYOR_*` variable (other than Conveyor's own that are no option). When not,
    /// the command line can go to the parser as it is, without reading the parser's description.
    public static func mayApply(to arguments: [String], environment: [String: String]) -> Bool {
        arguments.contains { $0 == "--config" || $0.hasPrefix("--config=") }
            || environment.keys.contains { isOptionCandidate($0) || $0 == configEnvironmentName }
    }

    static func isOptionCandidate(_ name: String) -> Bool {
        name.hasPrefix("CONVEYOR_") && !reservedEnvironment.contains(name) && !reservedEnvironmentPrefixes.contains(where: name.hasPrefix)
    }

    /// Options not taken from the environment or the file when another option is on the command
    /// line (a supervised consumer child, `--process-index`, is one process whatever
    /// `CONVEYOR_PROCESSES` says).
    public var notFilled: [Exception] = []

    public struct Exception: Sendable {
        public var command: [String]
        public var whenGiven: String
        public var keys: Set<String>
        public init(command: [String], whenGiven: String, keys: Set<String>) {
            self.command = command
            self.whenGiven = whenGiven
            self.keys = keys
        }
    }

    /// The key of the option that names the config file: never set in the file itself.
    public static let configKey = "config"
    public static let configEnvironmentName = "CONVEYOR_CONFIG"

    /// Words that ask the parser for help or its own output: the command line is then left alone
    /// (and the config file not read), so they work whatever the environment or the file hold.
    static let parserRequests: Set<String> = ["-h", "--help", "-help", "--version", "--experimental-dump-help",
                                              "--generate-completion-script"]

    public init(root: CommandSpec) {
        self.root = root
    }

    /// Where an option's effective value came from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case commandLine
        case environment(name: String)
        case file(path: String, line: Int)
        case defaultValue

        /// As `config show` prints it: `flag`, `env CONVEYOR_BROKER`, `file conveyor.toml:3`, `default`.
        public var description: String {
            switch self {
            case .commandLine: "flag"
            case .environment(let name): "env \(name)"
            case .file(let path, let line): "file \(path):\(line)"
            case .defaultValue: "default"
            }
        }
    }

    /// One option of the chosen command and its effective value.
    public struct Setting: Sendable, Equatable {
        public var option: OptionSpec
        public var source: Source
        /// Its value as text: one for most options, one per value for a repeated one, `true` or
        /// `false` for a flag, none when it has neither a value nor a default.
        public var values: [String]
        /// The words this put on the command line (for a value from the environment or the file).
        public var words: [String]
        /// As it was set, for messages: `CONVEYOR_BROKER=5555 (from the environment)`,
        /// `broker = "5555" (from conveyor.toml:3)`.
        public var given: String?
    }

    /// The config file in force, and what named it.
    public struct FileOrigin: Sendable, Equatable {
        public var path: String
        /// `--config` or `CONVEYOR_CONFIG`.
        public var namedBy: String

        public init(path: String, namedBy: String) {
            self.path = path
            self.namedBy = namedBy
        }
    }

    public struct Resolution: Sendable {
        /// The command chosen (`[]` when none is, or when the parser is asked for help).
        public var commandPath: [String]
        /// The command line for the parser.
        public var arguments: [String]
        /// Every configurable option of the command, in `--help` order.
        public var settings: [Setting]
        public var warnings: [String]
        public var file: FileOrigin?
        /// Help, a version or no command: the command line was passed through as it was.
        public var passedThrough: Bool

        /// The settings that came from the environment or the file.
        public var injected: [Setting] {
            settings.filter {
                switch $0.source {
                case .environment, .file: true
                case .commandLine, .defaultValue: false
                }
            }
        }
    }

    /// The config file that `arguments` (the command line without the program's name) or the
    /// environment names, and `arguments` without `--config FILE`.
    public static func configFile(in arguments: [String], environment: [String: String]) throws(ConfigError)
        -> (FileOrigin?, [String]) {
        let terminator = arguments.firstIndex(of: "--") ?? arguments.endIndex
        var kept: [String] = []
        var path: String?
        var index = 0
        while index < terminator {
            let word = arguments[index]
            if word == "--config" {
                guard index + 1 < terminator else {
                    throw ConfigError("--config needs a FILE, as in: conveyor --config conveyor.toml submit …")
                }
                path = arguments[index + 1]
                index += 2
                continue
            }
            if word.hasPrefix("--config=") {
                path = String(word.dropFirst("--config=".count))
            } else {
                kept.append(word)
            }
            index += 1
        }
        kept += arguments[terminator...]
        if let path { return (FileOrigin(path: path, namedBy: "--config"), kept) }
        if let path = environment[configEnvironmentName], !path.isEmpty {
            return (FileOrigin(path: path, namedBy: configEnvironmentName), kept)
        }
        return (nil, kept)
    }

    /// Resolves `arguments` (the command line without the program's name). `readFile` reads the
    /// config file, throwing a message that names it.
    public func resolve(_ arguments: [String], environment: [String: String],
                        readFile: (FileOrigin) throws(ConfigError) -> String) throws(ConfigError) -> Resolution {
        let (origin, words) = try Self.configFile(in: arguments, environment: environment)
        let terminator = words.firstIndex(of: "--") ?? words.endIndex
        let head = Array(words[..<terminator])

        var command = root
        var pathEnd = 0
        while pathEnd < head.count, let next = command.subcommand(named: head[pathEnd]) {
            command = next
            pathEnd += 1
        }
        while let name = command.defaultSubcommand, let next = command.subcommand(named: name) { command = next }

        let passThrough = Resolution(commandPath: [], arguments: words, settings: [], warnings: [], file: origin,
                                     passedThrough: true)
        if command.path.isEmpty || head.contains(where: Self.parserRequests.contains) { return passThrough }

        let file = try origin.map { origin throws(ConfigError) in try ConfigFile(path: origin.path, text: readFile(origin)) }
        if let file { try validate(file) }
        let warnings = environmentWarnings(environment)

        let given = Self.givenOptions(Array(head[pathEnd...]), of: command)
        let skipped = notFilled.filter { $0.command == command.path && given[$0.whenGiven] != nil }
            .reduce(into: Set<String>()) { $0.formUnion($1.keys) }
        var settings: [Setting] = []
        for option in command.options where option.key != Self.configKey {
            if let values = given[option.key] {
                let shown = option.kind == .counter ? ["\(values.count)"] : values
                settings.append(Setting(option: option, source: .commandLine, values: shown, words: [], given: nil))
            } else if !skipped.contains(option.key), let raw = environment[option.environmentName], !raw.isEmpty {
                settings.append(try Self.setting(option, fromEnvironment: raw))
            } else if !skipped.contains(option.key), let file, let entry = Self.entry(option.key, for: command.path, in: file) {
                settings.append(try Self.setting(option, from: entry, path: file.path))
            } else {
                settings.append(Setting(option: option, source: .defaultValue, values: option.defaultValue.map { [$0] } ?? [],
                                        words: [], given: nil))
            }
        }
        let injected = settings.flatMap(\.words)
        let arguments = Array(head[..<pathEnd]) + injected + Array(head[pathEnd...]) + Array(words[terminator...])
        return Resolution(commandPath: command.path, arguments: arguments, settings: settings, warnings: warnings,
                          file: origin, passedThrough: false)
    }

    /// The file's entry for `key` that applies to the command at `path`: its own section, then each
    /// parent's, then the top.
    static func entry(_ key: String, for path: [String], in file: ConfigFile) -> ConfigFile.Entry? {
        for depth in stride(from: path.count, through: 0, by: -1) {
            if let entry = file.entry(key, in: Array(path.prefix(depth))) { return entry }
        }
        return nil
    }

    /// Every section names a command, and every key an option of that command or of one below it
    /// (at the top: of any command).
    func validate(_ file: ConfigFile) throws(ConfigError) {
        let commandNames = root.subcommands.map { $0.path.last! }
        for section in file.sections where root.command(at: section.name) == nil {
            throw ConfigError("\(file.path):\(section.line): [\(section.name.joined(separator: "."))] names no conveyor command"
                + " (a section is a command: [\(commandNames.joined(separator: "], ["))], or [journal.verify] for a subcommand)")
        }
        for entry in file.entries {
            if entry.key == Self.configKey && entry.section.isEmpty {
                throw ConfigError("\(file.path):\(entry.line): config cannot be set in a config file; name the file with --config or CONVEYOR_CONFIG")
            }
            guard let scope = root.command(at: entry.section) else { continue }
            let known = Set(scope.allCommands.flatMap(\.options).map(\.key)).subtracting([Self.configKey])
            guard !known.contains(entry.key) else { continue }
            let hint = Self.suggestion(for: entry.key, among: known).map { " (did you mean \($0)?)" } ?? ""
            if entry.section.isEmpty {
                throw ConfigError("\(file.path):\(entry.line): unknown key \(entry.key): no conveyor command has an option --\(entry.key)\(hint)")
            }
            let section = entry.section.joined(separator: ".")
            throw ConfigError("\(file.path):\(entry.line): unknown key \(entry.key) in [\(section)]: \(scope.displayName) has no option --\(entry.key)\(hint)")
        }
    }

    /// A warning for each `CONVEYOR_*` variable that names no option of any command: the environment
    /// is shared with other programs and other versions, so it does not stop the command.
    func environmentWarnings(_ environment: [String: String]) -> [String] {
        let names = Set(root.allCommands.flatMap(\.options).map(\.environmentName))
        return environment.keys.sorted().compactMap { name -> String? in
            guard Self.isOptionCandidate(name), !names.contains(name) else { return nil }
            let prefix = "CONVEYOR_"
            let keys = Set(names.map { String($0.dropFirst(prefix.count)) })
            let hint = Self.suggestion(for: String(name.dropFirst(prefix.count)), among: keys).map { " (did you mean \(prefix)\($0)?)" } ?? ""
            return "\(name) is set in the environment but names no option of any conveyor command; it is ignored\(hint)"
        }
    }
}
