import Foundation

/// Reading a command line for the options it gives, and turning a value from the environment or
/// the file into the words that give it.
extension Layering {
    /// The options `words` (what follows the command's name) give, by key, with their values as
    /// text (`true`/`false` for a flag, one per time a counter is given).
    static func givenOptions(_ words: [String], of command: CommandSpec) -> [String: [String]] {
        var given: [String: [String]] = [:]
        var index = 0
        /// The value of an option written without `=`: the next word, unless that is an option.
        func nextValue(_ spelling: CommandSpec.Spelling) -> String {
            guard index < words.count else { return "" }
            let next = words[index]
            if spelling.unconditional || !next.hasPrefix("-") || next == "-" || Double(next) != nil {
                index += 1
                return next
            }
            return ""
        }
        while index < words.count {
            let word = words[index]
            index += 1
            guard word.hasPrefix("-"), word != "-" else { continue }
            let equals = word.firstIndex(of: "=")
            let name = String(word[..<(equals ?? word.endIndex)])
            if word.hasPrefix("--") || command.spellings[name] != nil {
                guard let spelling = command.spellings[name] else { continue }
                let value: String
                if spelling.takesValue {
                    value = equals.map { String(word[word.index(after: $0)...]) } ?? nextValue(spelling)
                } else {
                    value = spelling.flagValue ? "true" : "false"
                }
                if let key = spelling.key { given[key, default: []].append(value) }
                continue
            }
            // Short options, maybe several in one word (-abc), the last one maybe with its value.
            var rest = Substring(word.dropFirst())
            while let letter = rest.first, let spelling = command.spellings["-\(letter)"] {
                rest = rest.dropFirst()
                if spelling.takesValue {
                    let value = rest.isEmpty ? nextValue(spelling) : String(rest.drop { $0 == "=" })
                    if let key = spelling.key { given[key, default: []].append(value) }
                    break
                }
                if let key = spelling.key { given[key, default: []].append(spelling.flagValue ? "true" : "false") }
            }
        }
        return given
    }

    /// `true`, `false`, `1`, `0`, `yes`, `no`, `on`, `off` (any case).
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1", "yes", "on": true
        case "false", "0", "no", "off": false
        default: nil
        }
    }

    /// An environment list: comma-separated, `\,` for a comma inside a value, blanks around each
    /// value dropped, empty values skipped.
    static func list(_ text: String) -> [String] {
        var values: [String] = []
        var current = ""
        var escaped = false
        for character in text {
            if escaped {
                if character != "," { current.append("\\") }
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                values.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if escaped { current.append("\\") }
        values.append(current)
        return values.map { $0.trimmingBlanks() }.filter { !$0.isEmpty }
    }

    static func setting(_ option: OptionSpec, fromEnvironment raw: String) throws(ConfigError) -> Setting {
        let name = option.environmentName
        let given = "\(name)=\(raw) (from the environment)"
        let source = Source.environment(name: name)
        switch option.kind {
        case .value:
            let values = option.repeating ? list(raw) : [raw]
            return Setting(option: option, source: source, values: values, words: values.map { "\(option.spelling)=\($0)" },
                           given: given)
        case .flag, .inversion:
            guard let on = boolean(raw) else {
                throw ConfigError("\(given): \(option.spelling) is a flag: give true or false (or 1/0, yes/no)")
            }
            return Setting(option: option, source: source, values: [on ? "true" : "false"], words: flagWords(option, on),
                           given: given)
        case .counter:
            guard let count = Int(raw).flatMap({ $0 >= 0 ? $0 : nil }) ?? boolean(raw).map({ $0 ? 1 : 0 }) else {
                throw ConfigError("\(given): \(option.spelling) is given a number of times: give a count (0, 1, 2 …)")
            }
            return Setting(option: option, source: source, values: ["\(count)"],
                           words: Array(repeating: option.spelling, count: count), given: given)
        }
    }

    static func setting(_ option: OptionSpec, from entry: ConfigFile.Entry, path: String) throws(ConfigError) -> Setting {
        let given = "\(entry.key) = \(entry.value.tomlText) (from \(path):\(entry.line))"
        let source = Source.file(path: path, line: entry.line)
        let at = "\(path):\(entry.line)"
        switch option.kind {
        case .value:
            let values: [String]
            if case .array(let items) = entry.value {
                guard option.repeating else {
                    throw ConfigError("\(at): \(entry.key) takes one value, not an array (\(option.spelling) is given once)")
                }
                values = items.compactMap(\.argumentText)
            } else {
                values = entry.value.argumentText.map { [$0] } ?? []
            }
            return Setting(option: option, source: source, values: values, words: values.map { "\(option.spelling)=\($0)" },
                           given: given)
        case .flag, .inversion:
            let on: Bool?
            switch entry.value {
            case .boolean(let value): on = value
            case .string(let text), .integer(let text): on = boolean(text)
            case .float, .array: on = nil
            }
            guard let on else {
                throw ConfigError("\(at): \(entry.key) = \(entry.value.tomlText): \(option.spelling) is a flag: use true or false")
            }
            return Setting(option: option, source: source, values: [on ? "true" : "false"], words: flagWords(option, on),
                           given: given)
        case .counter:
            let count: Int?
            switch entry.value {
            case .integer(let text): count = Int(text).flatMap { $0 >= 0 ? $0 : nil }
            case .boolean(let value): count = value ? 1 : 0
            case .string, .float, .array: count = nil
            }
            guard let count else {
                throw ConfigError("\(at): \(entry.key) = \(entry.value.tomlText): \(option.spelling) is given a number of times: use a count (0, 1, 2 …)")
            }
            return Setting(option: option, source: source, values: ["\(count)"],
                           words: Array(repeating: option.spelling, count: count), given: given)
        }
    }

    /// The words that turn a flag on or off: off is no word, or the `--no-x` of a pair.
    static func flagWords(_ option: OptionSpec, _ on: Bool) -> [String] {
        switch option.kind {
        case .inversion(let negative): [on ? option.spelling : negative]
        default: on ? [option.spelling] : []
        }
    }

    /// The closest of `candidates` to `name`, if one is close (a typo, or `_` for `-`).
    static func suggestion(for name: String, among candidates: Set<String>) -> String? {
        let dashed = name.replacingOccurrences(of: "_", with: "-")
        if dashed != name, candidates.contains(dashed) { return dashed }
        let scored = candidates.map { ($0, distance(name.lowercased(), $0.lowercased())) }
            .filter { $0.1 <= max(1, min(3, name.count / 4)) }
        return scored.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }?.0
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var row = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = row
        }
        return previous[b.count]
    }
}

extension String {
    func trimmingBlanks() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
