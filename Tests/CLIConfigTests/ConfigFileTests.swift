import ConveyorCLIConfig
import Testing

/// The config file reader: the TOML subset it accepts, and the line it names for what it refuses.
@Suite struct ConfigFileTests {
    private func parse(_ text: String) throws -> ConfigFile {
        try ConfigFile(path: "c.toml", text: text)
    }

    /// The message for `text`, which must be refused.
    private func refusal(_ text: String) -> String {
        do {
            _ = try ConfigFile(path: "c.toml", text: text)
            return "accepted"
        } catch {
            return error.message
        }
    }

    @Test("top-level keys, sections, dotted sections, comments and every kind of value, each with its line")
    func readsTheSubset() throws {
        let file = try parse("""
            # shared
            broker = "tcp://10.0.0.5:5555"   # trailing comment
            log-level = 'debug'

            [broker]
            max-queued = 100_000
            result-ttl = 1.5e3
            in-memory = true
            journal-repair = false
            priority = -3
            tags = ["a", 'b,c', "d\\"e"]
            empty = []
            [journal.verify]
            spread = [
                "x",   # one
                "y",
            ]
            """)
        #expect(file.entries.map(\.key) == ["broker", "log-level", "max-queued", "result-ttl", "in-memory", "journal-repair",
                                            "priority", "tags", "empty", "spread"])
        #expect(file.entry("broker", in: [])?.value == .string("tcp://10.0.0.5:5555"))
        #expect(file.entry("broker", in: [])?.line == 2)
        #expect(file.entry("log-level", in: [])?.value == .string("debug"))
        #expect(file.entry("max-queued", in: ["broker"])?.value == .integer("100000"))
        #expect(file.entry("max-queued", in: ["broker"])?.line == 6)
        #expect(file.entry("result-ttl", in: ["broker"])?.value == .float("1.5e3"))
        #expect(file.entry("in-memory", in: ["broker"])?.value == .boolean(true))
        #expect(file.entry("journal-repair", in: ["broker"])?.value == .boolean(false))
        #expect(file.entry("priority", in: ["broker"])?.value == .integer("-3"))
        #expect(file.entry("tags", in: ["broker"])?.value == .array([.string("a"), .string("b,c"), .string("d\"e")]))
        #expect(file.entry("empty", in: ["broker"])?.value == .array([]))
        #expect(file.entry("spread", in: ["journal", "verify"])?.value == .array([.string("x"), .string("y")]))
        #expect(file.entry("spread", in: ["journal", "verify"])?.line == 14, "an array's line is its key's")
        #expect(file.sections.map(\.name) == [["broker"], ["journal", "verify"]])
        #expect(file.sections.map(\.line) == [5, 13])
    }

    @Test("escapes in basic strings; literal strings keep backslashes; CRLF line ends and a BOM")
    func stringsAndLineEnds() throws {
        let file = try parse("\u{FEFF}a = \"tab\\there \\u00e9 \\U0001F600 \\\\\"\r\nb = 'C:\\path\\n'\r\n[s]\r\nc = 1\r\n")
        #expect(file.entry("a", in: [])?.value == .string("tab\there é 😀 \\"))
        #expect(file.entry("b", in: [])?.value == .string("C:\\path\\n"))
        #expect(file.entry("c", in: ["s"])?.line == 4)
    }

    @Test("an empty file, and one with only comments, has no entries")
    func empty() throws {
        #expect(try parse("").entries.isEmpty)
        #expect(try parse("# nothing\n\n   # here\n").entries.isEmpty)
    }

    @Test("a bare word where a string belongs is refused with its line and the way to quote it")
    func bareWord() {
        #expect(refusal("a = 1\nbroker = tcp://h:1\n") == #"c.toml:2: tcp://h:1 is not a TOML value: strings are quoted, as in broker = "tcp://h:1""#)
        #expect(refusal("x = yes") == #"c.toml:1: yes is not a TOML value: strings are quoted, as in x = "yes""#)
    }

    @Test("what the subset leaves out is refused, each with its line")
    func refusals() {
        #expect(refusal("\n\"quoted\" = 1").hasPrefix("c.toml:2: quoted keys are not used"))
        #expect(refusal("broker.max-queued = 1").hasPrefix("c.toml:1: dotted keys are not used; put broker's options in a [broker] section"))
        #expect(refusal("a = {b = 1}").hasPrefix("c.toml:1: inline tables"))
        #expect(refusal("[[broker]]").hasPrefix("c.toml:1: arrays of tables"))
        #expect(refusal("a = \"\"\"x\"\"\"").hasPrefix("c.toml:1: multi-line strings"))
        #expect(refusal("a = [[1], [2]]").hasPrefix("c.toml:1: arrays inside arrays"))
        #expect(refusal("a = 2024-01-01").hasPrefix("c.toml:1: dates are not used"))
        #expect(refusal("a = ").hasPrefix("c.toml:1: a has no value"))
        #expect(refusal("a").hasPrefix("c.toml:1: expected = after a"))
        #expect(refusal("= 1").hasPrefix("c.toml:1: expected KEY = VALUE"))
        #expect(refusal("a = \"open").hasPrefix("c.toml:1: a string is not closed"))
        #expect(refusal("a = \"\\q\"").hasPrefix("c.toml:1: unknown escape \\q"))
        #expect(refusal("a = 1 2").hasPrefix("c.toml:1: unexpected text after the value of a: 2"))
        #expect(refusal("[broker] x").hasPrefix("c.toml:1: unexpected text after the section header"))
        #expect(refusal("[broker").hasPrefix("c.toml:1: expected ] to close the section header"))
        #expect(refusal("[]").hasPrefix("c.toml:1: expected a command's name"))
        #expect(refusal("a = [1,\n2\n").hasPrefix("c.toml:1: the array of a is not closed"))
        #expect(refusal("a = [1 2]").hasPrefix("c.toml:1: expected , or ] in the array of a"))
        #expect(refusal("a = 1__0").hasPrefix("c.toml:1: 1__0 is not a TOML value"))
    }

    @Test("a key or a section given twice is refused, naming both lines")
    func duplicates() {
        #expect(refusal("a = 1\n[s]\na = 2\nb = 1\nb = 2") == "c.toml:5: b is set twice in [s] (first on line 4)")
        #expect(refusal("a = 1\na = 2") == "c.toml:2: a is set twice (first on line 1)")
        #expect(refusal("[s]\n[t]\n[s]") == "c.toml:3: section [s] appears twice (first on line 1)")
    }

    @Test("numbers as TOML writes them")
    func numbers() throws {
        for (text, value) in [("0", ConfigValue.integer("0")), ("+7", .integer("+7")), ("1_000", .integer("1000")),
                              ("3.25", .float("3.25")), ("-0.5", .float("-0.5")), ("5e-3", .float("5e-3")),
                              ("6.02E23", .float("6.02E23"))] {
            #expect(try parse("n = \(text)").entries.first?.value == value, "\(text)")
        }
        for text in ["1.", ".5", "_1", "1_", "1e", "0x10"] {
            #expect(refusal("n = \(text)").contains("is not a TOML value"), "\(text)")
        }
    }

    @Test("a value as it reads in the file, for messages")
    func tomlText() {
        #expect(ConfigValue.string("a\"b").tomlText == #""a\"b""#)
        #expect(ConfigValue.array([.integer("1"), .string("x")]).tomlText == #"[1, "x"]"#)
        #expect(ConfigValue.boolean(true).argumentText == "true")
        #expect(ConfigValue.array([]).argumentText == nil)
    }
}
