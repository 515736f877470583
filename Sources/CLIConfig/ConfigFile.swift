import Foundation

/// A Conveyor config file: a deliberately small subset of TOML, so that every file it accepts is
/// also valid TOML (editors and linters understand it) while each key keeps the line it is on, for
/// errors and for `conveyor config show`.
///
/// ```toml
/// # Shared: every command that has the option takes it.
/// broker = "tcp://10.0.0.5:5555"
/// log-level = "debug"
///
/// [broker]                 # only `conveyor broker`
/// max-queued = 100_000
/// in-memory = true
///
/// [journal.verify]         # a subcommand's section
/// ```
///
/// Accepted: `# comments`, `[section]` and `[dotted.section]` headers, `key = value` with a bare key,
/// and values that are basic strings (`"…"` with TOML's escapes), literal strings (`'…'`), integers
/// (`1_000`), floats, booleans, and arrays of those (`["a", "b"]`, also over several lines).
/// Refused, each with its line: quoted or dotted keys, inline tables, arrays of tables, multi-line
/// strings, dates, nested arrays, a key or a section given twice, and a bare word where a string
/// belongs.
public struct ConfigFile: Sendable, Equatable {
    /// One `key = value` line.
    public struct Entry: Sendable, Equatable {
        /// The section it is in: `[]` at the top, `["broker"]`, `["journal", "verify"]`.
        public var section: [String]
        public var key: String
        public var value: ConfigValue
        /// 1-based.
        public var line: Int

        public init(section: [String], key: String, value: ConfigValue, line: Int) {
            self.section = section
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// One `[section]` header.
    public struct Section: Sendable, Equatable {
        public var name: [String]
        public var line: Int
    }

    /// As it was named (`--config` or `CONVEYOR_CONFIG`), for messages.
    public var path: String
    public var entries: [Entry]
    public var sections: [Section]

    /// Parses `text`, the content of the file at `path`.
    public init(path: String, text: String) throws(ConfigError) {
        self.path = path
        var parser = TOMLSubsetParser(text: text, path: path)
        (entries, sections) = try parser.parse()
    }

    /// The entry for `key` in `section`, if any.
    public func entry(_ key: String, in section: [String]) -> Entry? {
        entries.first { $0.section == section && $0.key == key }
    }
}

/// The reader behind ``ConfigFile``: one pass over the text's Unicode scalars, keeping the line.
struct TOMLSubsetParser {
    private let scalars: [Unicode.Scalar]
    private let path: String
    private var index = 0
    private var line = 1

    init(text: String, path: String) {
        scalars = Array(text.unicodeScalars)
        self.path = path
    }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private func peek(_ offset: Int) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    private func error(_ message: String, line: Int? = nil) -> ConfigError {
        ConfigError("\(path):\(line ?? self.line): \(message)")
    }

    private mutating func advance() {
        if current == "\n" { line += 1 }
        index += 1
    }

    /// Skips spaces and tabs (not newlines).
    private mutating func skipBlanks() {
        while let c = current, c == " " || c == "\t" { advance() }
    }

    /// Skips blanks, newlines and comments (inside an array).
    private mutating func skipBlanksNewlinesAndComments() {
        while let c = current {
            if c == " " || c == "\t" || c == "\n" || c == "\r" {
                advance()
            } else if c == "#" {
                skipComment()
            } else {
                return
            }
        }
    }

    private mutating func skipComment() {
        while let c = current, c != "\n" { advance() }
    }

    /// After a header or a value: blanks, an optional comment, then the end of the line.
    private mutating func expectEndOfLine(after what: String) throws(ConfigError) {
        skipBlanks()
        if current == "#" { skipComment() }
        if current == "\r" && peek(1) == "\n" { advance() }
        guard let c = current else { return }
        guard c == "\n" else { throw error("unexpected text after \(what): \(restOfLine())") }
        advance()
    }

    private func restOfLine() -> String {
        var text = ""
        var i = index
        while i < scalars.count, scalars[i] != "\n", scalars[i] != "\r" {
            text.unicodeScalars.append(scalars[i])
            i += 1
        }
        return text
    }

    private static func isBareKey(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-" || c == "_"
    }

    private mutating func bareKey() -> String {
        var key = ""
        while let c = current, Self.isBareKey(c) {
            key.unicodeScalars.append(c)
            advance()
        }
        return key
    }

    mutating func parse() throws(ConfigError) -> ([ConfigFile.Entry], [ConfigFile.Section]) {
        var entries: [ConfigFile.Entry] = []
        var sections: [ConfigFile.Section] = []
        var section: [String] = []
        if current == "\u{FEFF}" { advance() }
        while current != nil {
            skipBlanks()
            guard let c = current else { break }
            switch c {
            case "\n":
                advance()
            case "\r" where peek(1) == "\n":
                advance()
                advance()
            case "#":
                skipComment()
            case "[":
                let name = try header()
                if let first = sections.first(where: { $0.name == name }) {
                    throw error("section [\(name.joined(separator: "."))] appears twice (first on line \(first.line))")
                }
                sections.append(.init(name: name, line: line))
                section = name
                try expectEndOfLine(after: "the section header")
            default:
                let entry = try keyValue(in: section)
                if let first = entries.first(where: { $0.section == section && $0.key == entry.key }) {
                    throw error("\(entry.key) is set twice\(Self.describe(section)) (first on line \(first.line))")
                }
                entries.append(entry)
                try expectEndOfLine(after: "the value of \(entry.key)")
            }
        }
        return (entries, sections)
    }

    private static func describe(_ section: [String]) -> String {
        section.isEmpty ? "" : " in [\(section.joined(separator: "."))]"
    }

    /// `[name]` or `[a.b]`.
    private mutating func header() throws(ConfigError) -> [String] {
        advance()
        if current == "[" {
            throw error("arrays of tables ([[…]]) are not used in a conveyor config file; a section is [COMMAND]")
        }
        var parts: [String] = []
        while true {
            skipBlanks()
            if current == "\"" || current == "'" {
                throw error("quoted section names are not used; a section is a command's name, as in [broker] or [journal.verify]")
            }
            let part = bareKey()
            guard !part.isEmpty else { throw error("expected a command's name in the section header, as in [broker]") }
            parts.append(part)
            skipBlanks()
            if current == "." {
                advance()
                continue
            }
            guard current == "]" else { throw error("expected ] to close the section header") }
            advance()
            return parts
        }
    }

    /// `key = value`.
    private mutating func keyValue(in section: [String]) throws(ConfigError) -> ConfigFile.Entry {
        let keyLine = line
        if current == "\"" || current == "'" {
            throw error("quoted keys are not used; a key is an option's long name, bare, as in max-queued = 10")
        }
        let key = bareKey()
        guard !key.isEmpty else {
            throw error("expected KEY = VALUE (a key is an option's long name, as in broker = \"tcp://127.0.0.1:5555\"), not: \(restOfLine())")
        }
        skipBlanks()
        if current == "." {
            throw error("dotted keys are not used; put \(key)'s options in a [\(key)] section")
        }
        guard current == "=" else { throw error("expected = after \(key)") }
        advance()
        skipBlanks()
        let value = try self.value(for: key, allowArray: true)
        return .init(section: section, key: key, value: value, line: keyLine)
    }

    private mutating func value(for key: String, allowArray: Bool) throws(ConfigError) -> ConfigValue {
        guard let c = current, c != "\n", c != "\r", c != "#" else { throw error("\(key) has no value") }
        switch c {
        case "\"":
            if peek(1) == "\"" && peek(2) == "\"" { throw error("multi-line strings (\"\"\") are not used in a conveyor config file") }
            return .string(try basicString())
        case "'":
            if peek(1) == "'" && peek(2) == "'" { throw error("multi-line strings (''') are not used in a conveyor config file") }
            return .string(try literalString())
        case "[":
            guard allowArray else { throw error("arrays inside arrays are not used in a conveyor config file") }
            return try array(for: key)
        case "{":
            throw error("inline tables ({…}) are not used in a conveyor config file; use a [section]")
        default:
            return try bareValue(for: key)
        }
    }

    private mutating func basicString() throws(ConfigError) -> String {
        advance()
        var text = ""
        while true {
            guard let c = current, c != "\n" else { throw error("a string is not closed with \" on its line") }
            advance()
            if c == "\"" { return text }
            guard c == "\\" else {
                text.unicodeScalars.append(c)
                continue
            }
            guard let escape = current else { throw error("a string ends in \\") }
            advance()
            switch escape {
            case "\"": text += "\""
            case "\\": text += "\\"
            case "n": text += "\n"
            case "t": text += "\t"
            case "r": text += "\r"
            case "b": text += "\u{8}"
            case "f": text += "\u{C}"
            case "u", "U":
                let count = escape == "u" ? 4 : 8
                var hex = ""
                for _ in 0..<count {
                    guard let h = current, h.properties.isASCIIHexDigit else {
                        throw error("\\\(escape) needs \(count) hex digits")
                    }
                    hex.unicodeScalars.append(h)
                    advance()
                }
                guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
                    throw error("\\\(escape)\(hex) is not a Unicode scalar")
                }
                text.unicodeScalars.append(scalar)
            default:
                throw error("unknown escape \\\(escape) in a string (use \\\\ for a backslash, or a 'literal string')")
            }
        }
    }

    private mutating func literalString() throws(ConfigError) -> String {
        advance()
        var text = ""
        while true {
            guard let c = current, c != "\n" else { throw error("a string is not closed with ' on its line") }
            advance()
            if c == "'" { return text }
            text.unicodeScalars.append(c)
        }
    }

    private mutating func array(for key: String) throws(ConfigError) -> ConfigValue {
        let start = line
        advance()
        var values: [ConfigValue] = []
        while true {
            skipBlanksNewlinesAndComments()
            guard let c = current else { throw error("the array of \(key) is not closed with ]", line: start) }
            if c == "]" {
                advance()
                return .array(values)
            }
            values.append(try value(for: key, allowArray: false))
            skipBlanksNewlinesAndComments()
            if current == nil {
                throw error("the array of \(key) is not closed with ]", line: start)
            } else if current == "," {
                advance()
            } else if current != "]" {
                throw error("expected , or ] in the array of \(key)")
            }
        }
    }

    /// A boolean or a number; anything else is a bare word, refused with the way to quote it.
    private mutating func bareValue(for key: String) throws(ConfigError) -> ConfigValue {
        var word = ""
        while let c = current, !(c == " " || c == "\t" || c == "\n" || c == "\r" || c == "#" || c == "," || c == "]") {
            word.unicodeScalars.append(c)
            advance()
        }
        if word == "true" { return .boolean(true) }
        if word == "false" { return .boolean(false) }
        if Self.isInteger(word) { return .integer(word.replacingOccurrences(of: "_", with: "")) }
        if Self.isFloat(word) { return .float(word.replacingOccurrences(of: "_", with: "")) }
        if word.count >= 10, word.prefix(4).allSatisfy(\.isNumber), word.dropFirst(4).first == "-" {
            throw error("dates are not used in a conveyor config file; quote it: \(key) = \"\(word)\"")
        }
        throw error("\(word) is not a TOML value: strings are quoted, as in \(key) = \"\(word)\"")
    }

    /// Decimal digits, single `_` between digits.
    private static func isDigits(_ text: Substring) -> Bool {
        guard let first = text.first, let last = text.last, first.isASCII, first.isNumber, last.isASCII, last.isNumber else {
            return false
        }
        var previousUnderscore = false
        for c in text {
            if c == "_" {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if c.isASCII && c.isNumber {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return true
    }

    static func isInteger(_ word: String) -> Bool {
        var body = Substring(word)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        return isDigits(body)
    }

    static func isFloat(_ word: String) -> Bool {
        var body = Substring(word)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        let exponentParts = body.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false)
            .flatMap { $0.split(separator: "E", maxSplits: 1, omittingEmptySubsequences: false) }
        guard let mantissa = exponentParts.first, exponentParts.count <= 2 else { return false }
        if exponentParts.count == 2 {
            var exponent = exponentParts[1]
            if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
            guard isDigits(exponent) else { return false }
        }
        let pieces = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard isDigits(pieces[0]) else { return false }
        if pieces.count == 2 { return isDigits(pieces[1]) }
        return exponentParts.count == 2
    }
}
