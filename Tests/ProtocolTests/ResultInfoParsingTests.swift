import ConveyorProtocol
import Foundation
import Testing

/// `ResultInfo.init?(parsing:)`, the hand parser the producer uses for info frames before falling
/// back to `JSONDecoder`: whatever it accepts it must read exactly as `JSONDecoder` does, and
/// anything outside its flat, escape-free form must give `nil`.
@Suite("Result info parsing")
struct ResultInfoParsingTests {
    static func parse(_ bytes: [UInt8]) -> ResultInfo? {
        bytes.withUnsafeBytes { ResultInfo(parsing: $0) }
    }

    static func parse(_ text: String) -> ResultInfo? { parse(Array(text.utf8)) }

    static func decode(_ text: String) -> ResultInfo? {
        try? JSONDecoder().decode(ResultInfo.self, from: Data(text.utf8))
    }

    static let infos: [ResultInfo] = [
        ResultInfo(host: "worker-7.example.com", pid: 4242, thread: 3, process: 1, attempts: 2, elapsedMilliseconds: 12.5),
        ResultInfo(host: "h", pid: 1, thread: 0, attempts: 1, elapsedMilliseconds: 0.049),
        ResultInfo(host: "hôte-日本語-🎉 e\u{0301}", pid: 77, thread: 15, process: 0, attempts: 1, elapsedMilliseconds: 3),
        ResultInfo(host: "", pid: 0, thread: 0, process: 0, attempts: 0, elapsedMilliseconds: 0),
        ResultInfo(pid: -1, thread: -2, process: -3, attempts: -4, elapsedMilliseconds: -0.5),
        ResultInfo(pid: Int.max, thread: Int.min, attempts: 1),
        ResultInfo(host: "slash/and spaces\u{7F}", attempts: 3),
        ResultInfo(attempts: 0),
        ResultInfo(pid: 12),
        ResultInfo(elapsedMilliseconds: 1_234_567.125),
        ResultInfo(elapsedMilliseconds: 1.23456789),
        ResultInfo(elapsedMilliseconds: 0.001),
        ResultInfo(elapsedMilliseconds: 0.0004),
        ResultInfo(elapsedMilliseconds: 1e20),
        ResultInfo(elapsedMilliseconds: 123_456_789_012.5),
        ResultInfo(host: "only-host"),
        ResultInfo(),
    ]

    @Test("parsing info.json gives what JSONDecoder gives", arguments: infos)
    func parsesWhatJSONWrites(info: ResultInfo) throws {
        let json = info.json
        let parsed = try #require(Self.parse(json), "\(json)")
        let decoded = try JSONDecoder().decode(ResultInfo.self, from: Data(json.utf8))
        #expect(parsed == decoded, "\(json)")
        // Fields other than elapsed_ms survive exactly; elapsed_ms as json rounds it (microseconds).
        #expect(parsed.host == info.host)
        #expect(parsed.pid == info.pid)
        #expect(parsed.thread == info.thread)
        #expect(parsed.process == info.process)
        #expect(parsed.attempts == info.attempts)
        if let elapsed = info.elapsedMilliseconds {
            #expect(parsed.elapsedMilliseconds == (elapsed * 1000).rounded() / 1000)
        } else {
            #expect(parsed.elapsedMilliseconds == nil)
        }
    }

    @Test("every proper prefix of info.json is refused (truncated input)", arguments: infos)
    func truncatedInputIsRefused(info: ResultInfo) {
        let bytes = Array(info.json.utf8)
        for length in 0..<bytes.count {
            #expect(Self.parse(Array(bytes[..<length])) == nil, "\(String(decoding: bytes[..<length], as: UTF8.self))")
        }
    }

    @Test("what a consumer writes parses: the consumer's prefix plus per-task fields")
    func consumerShapedInfo() {
        // Consumer.swift writes `{"host":…,"pid":…,"process":…,` then the per-task fields.
        let text = #"{"host":"vm-1","pid":4242,"process":0,"thread":3,"attempts":1,"elapsed_ms":0.012}"#
        #expect(Self.parse(text) == ResultInfo(host: "vm-1", pid: 4242, thread: 3, process: 0, attempts: 1, elapsedMilliseconds: 0.012))
        #expect(Self.parse(text) == Self.decode(text))
    }

    @Test("whitespace between tokens is accepted")
    func whitespaceBetweenTokens() {
        let texts = [
            " {\"host\":\"h\",\"pid\":12}",
            "{ \"host\" : \"h\" , \"pid\" : 12 }",
            "\n\t{\r\n\"host\"\t:\n\"h\"\r,\r\"pid\"\n:\t12\n}\n\t ",
            "{\"host\":\"h\",    \"pid\":12       }   ",
        ]
        for text in texts {
            #expect(Self.parse(text) == ResultInfo(host: "h", pid: 12), "\(text.debugDescription)")
            #expect(Self.parse(text) == Self.decode(text), "\(text.debugDescription)")
        }
        #expect(Self.parse("{ }") == ResultInfo())
        #expect(Self.parse(" \n{\t}\r\n") == ResultInfo())
        // Spaces inside a string are the string's.
        #expect(Self.parse(#"{"host":" h "}"#) == ResultInfo(host: " h "))
    }

    @Test("unknown keys are skipped, whatever their value: number, string or null")
    func unknownKeysAreSkipped() {
        let texts = [
            #"{"extra":12,"pid":3}"#,
            #"{"pid":3,"extra":-1.5e3}"#,
            #"{"note":"hello there","pid":3}"#,
            #"{"note":"","pid":3,"other":null}"#,
            #"{"a":0,"b":"x","c":null,"pid":3,"d":1E+2,"e":"日本"}"#,
            #"{"HOST":"upper case is another key","pid":3}"#,
            #"{"":1,"pid":3}"#,
        ]
        for text in texts {
            #expect(Self.parse(text) == ResultInfo(pid: 3), "\(text)")
            #expect(Self.parse(text) == Self.decode(text), "\(text)")
        }
    }

    @Test("null for a known key leaves it nil, as JSONDecoder does")
    func nullForKnownKeys() {
        let text = #"{"host":null,"pid":null,"thread":null,"process":null,"attempts":null,"elapsed_ms":null}"#
        #expect(Self.parse(text) == ResultInfo())
        #expect(Self.decode(text) == ResultInfo())
        #expect(Self.parse(#"{"host":"h","pid":null}"#) == ResultInfo(host: "h"))
    }

    @Test("a buffer is read within its bounds only")
    func readsOnlyItsBuffer() {
        let bytes = Array(#"xx{"pid":1}yy"#.utf8)
        let inner = bytes.withUnsafeBytes { ResultInfo(parsing: UnsafeRawBufferPointer(rebasing: $0[2..<11])) }
        #expect(inner == ResultInfo(pid: 1))
        // The closing brace is just past the end: not part of the input.
        let cut = bytes.withUnsafeBytes { ResultInfo(parsing: UnsafeRawBufferPointer(rebasing: $0[2..<10])) }
        #expect(cut == nil)
    }

    static let refused: [(String, String)] = [
        // Escapes in strings: the parser leaves them to JSONDecoder.
        ("escaped quote in host", #"{"host":"a\"b"}"#),
        ("escaped newline in host", #"{"host":"a\nb"}"#),
        ("unicode escape in host", #"{"host":"\u0041"}"#),
        ("escaped backslash in host", #"{"host":"a\\b"}"#),
        ("escape in an unknown key's value", #"{"note":"a\tb","pid":1}"#),
        ("escape in a key", #"{"ho\u0073t":"h"}"#),
        ("raw control character in a string", "{\"host\":\"a\tb\"}"),
        ("raw newline in a string", "{\"host\":\"a\nb\"}"),
        // Nesting.
        ("object under an unknown key", #"{"extra":{"a":1},"pid":1}"#),
        ("empty object under an unknown key", #"{"extra":{}}"#),
        ("array under an unknown key", #"{"extra":[1,2],"pid":1}"#),
        ("object for host", #"{"host":{"name":"h"}}"#),
        ("array for pid", #"{"pid":[1]}"#),
        ("object for elapsed_ms", #"{"elapsed_ms":{}}"#),
        // Wrong types.
        ("number for host", #"{"host":12}"#),
        ("string for pid", #"{"pid":"12"}"#),
        ("string for thread", #"{"thread":"0"}"#),
        ("string for process", #"{"process":"0"}"#),
        ("string for attempts", #"{"attempts":"1"}"#),
        ("string for elapsed_ms", #"{"elapsed_ms":"1.5"}"#),
        ("fraction for pid", #"{"pid":1.5}"#),
        // Broken structure.
        ("missing colon", #"{"pid" 1}"#),
        ("missing comma", #"{"pid":1 "thread":2}"#),
        ("trailing comma", #"{"pid":1,}"#),
        ("leading comma", #"{,"pid":1}"#),
        ("missing value", #"{"pid":}"#),
        ("unquoted key", #"{pid:1}"#),
        ("misspelt null", #"{"pid":nul}"#),
        ("unterminated key", #"{"pid"#),
        ("unterminated string", #"{"host":"h"#),
        ("unterminated object", #"{"host":"h","pid":1"#),
        ("only an opening brace", "{"),
        // Trailing garbage.
        ("a second object", #"{"pid":1}{}"#),
        ("a second closing brace", #"{"pid":1}}"#),
        ("trailing comma after the object", #"{"pid":1},"#),
        ("trailing letters", #"{"pid":1}x"#),
        ("trailing letters after spaces", "{} \n x"),
        ("trailing NUL", "{}\u{0}"),
        // Not an object.
        ("array", "[]"),
        ("array of an object", #"[{"pid":1}]"#),
        ("string", #""host""#),
        ("number", "12"),
        ("null", "null"),
        ("true", "true"),
        ("a closing brace", "}"),
        // Empty.
        ("empty input", ""),
        ("only whitespace", " \n\t\r "),
    ]

    @Test("refused input gives nil", arguments: refused)
    func refusedInput(_ label: String, _ text: String) {
        #expect(Self.parse(text) == nil, "\(label): \(text.debugDescription)")
    }

    @Test("an empty buffer without a base address gives nil")
    func emptyBuffer() {
        #expect(ResultInfo(parsing: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
    }

    @Test("escaped input the parser refuses still decodes with JSONDecoder (the producer's fallback)")
    func fallbackDecodesEscapes() throws {
        let info = ResultInfo(host: "vm \"1\"\n\\", pid: 4242, thread: 1, attempts: 1, elapsedMilliseconds: 2.5)
        #expect(Self.parse(info.json) == nil)
        #expect(Self.decode(info.json) == info)
    }

    /// Malformed numbers. The parser is a fast path in front of `JSONDecoder`: whatever it accepts
    /// must be read exactly as `JSONDecoder` reads it, and what `JSONDecoder` refuses it must refuse.
    /// (Foundation's decoder does not check the numbers of keys it skips, so for some of these
    /// both accept.)
    static let malformedNumbers: [(String, String)] = [
        ("plus sign on pid", #"{"pid":+5}"#),
        ("leading zero on pid", #"{"pid":012}"#),
        ("leading dot on elapsed_ms", #"{"elapsed_ms":.5}"#),
        ("trailing dot on elapsed_ms", #"{"elapsed_ms":5.}"#),
        ("plus sign on an unknown key", #"{"x":+1,"pid":1}"#),
        ("lone e on an unknown key", #"{"x":e,"pid":1}"#),
        ("lone minus on an unknown key", #"{"x":-,"pid":1}"#),
        ("minus in the middle on an unknown key", #"{"x":1-2,"pid":1}"#),
        ("double dot on an unknown key", #"{"x":1..2,"pid":1}"#),
    ]

    @Test("malformed numbers: the parser accepts nothing JSONDecoder refuses", arguments: malformedNumbers)
    func malformedNumbersAgreeWithJSONDecoder(_ label: String, _ text: String) {
        let parsed = Self.parse(text)
        let decoded = Self.decode(text)
        #expect(parsed == nil || parsed == decoded,
                "\(label): \(text) parsed as \(String(describing: parsed)); JSONDecoder gives \(String(describing: decoded))")
    }

    @Test("invalid UTF-8 in a string: the parser accepts nothing JSONDecoder refuses")
    func invalidUTF8AgreesWithJSONDecoder() {
        let bytes = Array(#"{"host":"a"#.utf8) + [0xFF, 0xFE] + Array(#"b","pid":1}"#.utf8)
        let parsed = Self.parse(bytes)
        let decoded = try? JSONDecoder().decode(ResultInfo.self, from: Data(bytes))
        #expect(parsed == nil || parsed == decoded,
                "parsed as \(String(describing: parsed)); JSONDecoder gives \(String(describing: decoded))")
    }
}
