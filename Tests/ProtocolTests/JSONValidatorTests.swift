import ConveyorProtocol
import Foundation
import Testing

@Suite("JSON validator")
struct JSONValidatorTests {
    static let validDocuments: [String] = [
        "{}", "[]", "0", "-0", "1", "-1", "123.456", "-0.5e+10", "1E-7", "2e3", "0.0", "1e+0",
        "true", "false", "null", #""""#, #""plain""#,
        #"{"a":1}"#, #"[1,2,3]"#, #"{"":""}"#, "[[[[]]]]", "[{}]", #"{"a":{}}"#,
        #"{"a":{"b":[1,{"c":null,"d":[true,false]}],"e":"f"}}"#,
        #""esc \" \\ \/ \b \f \n \r \t""#,
        #""\u00e9 \u00E9 \u0000 \uFFFF""#,
        #""\uD83D\uDE00""#,
        "\"héllo ✓ 日本語 🎉 👩‍👩‍👧\"",
        "{\"ключ\":\"значение\",\"🔑\":[\"é\"]}",
        " \t\n\r {\"a\" : [ 1 , 2 ] ,\n\t\"b\" :\r\n null } \n ",
        "  42  ",
        "[1.5e300,-2E-300,0.1,10]",
        "\"\u{7F}\"",
        String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
        String(repeating: #"{"k":"#, count: 100) + "0" + String(repeating: "}", count: 100),
    ]

    @Test("Valid documents pass: objects, arrays, nesting, numbers, escapes, unicode, whitespace", arguments: validDocuments)
    func validDocumentPasses(text: String) throws {
        let input = Array(text.utf8)
        try JSONValidator.validate(input)
        #expect(JSONValidator.isValid(input))
        #expect(foundationAccepts(input), "Foundation disagrees: the fixture itself is wrong")
    }

    /// Invalid documents with the byte offset of the failure and a word of its reason.
    static let invalidDocuments: [(String, Int, String)] = [
        ("", 0, "unexpected end of input"),
        ("   ", 3, "unexpected end of input"),
        ("[1,2,]", 5, "unexpected character ']'"),
        (#"{"a":1,}"#, 7, "expected a string key"),
        ("{'a':1}", 1, "expected a string key"),
        ("'a'", 0, "unexpected character"),
        ("01", 1, "unexpected data after the value"),
        ("-01", 2, "unexpected data after the value"),
        ("-", 1, "expected a digit"),
        ("-a", 1, "expected a digit"),
        ("+1", 0, "unexpected character '+'"),
        (".5", 0, "unexpected character '.'"),
        ("1.", 2, "expected a digit after '.'"),
        ("1.e5", 2, "expected a digit after '.'"),
        ("1e", 2, "expected a digit in exponent"),
        ("1e+", 3, "expected a digit in exponent"),
        (#""abc"#, 4, "unterminated string"),
        (#"{"a":"b"#, 7, "unterminated string"),
        ("\"a\u{01}b\"", 2, "control character in string"),
        ("\"tab\there\"", 4, "control character in string"),
        ("\"line\nbreak\"", 5, "control character in string"),
        (#""\x""#, 2, "invalid escape"),
        (#""\'""#, 2, "invalid escape"),
        (#""\u12G4""#, 5, "invalid \\u escape"),
        (#""\u12""#, 5, "invalid \\u escape"),
        (#""ab\"#, 4, "unexpected end of input"),
        ("{} x", 3, "unexpected data after the value"),
        ("[] []", 3, "unexpected data after the value"),
        ("1 2", 2, "unexpected data after the value"),
        ("tru", 0, "unexpected end of input"),
        ("trux", 0, "invalid literal"),
        ("True", 0, "unexpected character 'T'"),
        ("nul", 0, "unexpected end of input"),
        ("NaN", 0, "unexpected character 'N'"),
        ("[", 1, "unexpected end of input"),
        ("[1", 2, "unexpected end of input"),
        ("[1 2]", 3, "expected ',' or ']'"),
        ("{", 1, "expected a string key"),
        (#"{"a""#, 4, "expected ':'"),
        (#"{"a" 1}"#, 5, "expected ':'"),
        (#"{"a":1"#, 6, "unexpected end of input"),
        (#"{"a":1 "b":2}"#, 7, "expected ',' or '}'"),
        ("{1:2}", 1, "expected a string key"),
        ("[,1]", 1, "unexpected character ','"),
        (String(repeating: "[", count: 600) + String(repeating: "]", count: 600), 512, "nested deeper than 512"),
        (String(repeating: "[", count: 513) + String(repeating: "]", count: 513), 512, "nested deeper than 512"),
        (String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600), 512 * 5, "nested deeper than 512"),
    ]

    @Test("Invalid documents fail at the offending byte with a reason", arguments: invalidDocuments)
    func invalidDocumentFails(text: String, offset: Int, reason: String) {
        let input = Array(text.utf8)
        #expect(!JSONValidator.isValid(input))
        let failure = #expect(throws: JSONValidator.Failure.self) { try JSONValidator.validate(input) }
        #expect(failure?.offset == offset)
        #expect(failure?.reason.contains(reason) == true, "reason was: \(failure?.reason ?? "-")")
        #expect(failure?.description == "invalid JSON at byte \(offset): \(failure?.reason ?? "")")
        // Foundation rejects these too, except for the trailing commas it tolerates.
        if !text.hasSuffix(",]") && !text.hasSuffix(",}") {
            #expect(!foundationAccepts(input), "Foundation accepts \(text.debugDescription)")
        }
    }

    @Test("Validating a buffer in place gives the same failure as validating an array")
    func bufferAndArrayAgree() {
        let input = Array(#"{"a":[1,2,}"#.utf8)
        let fromArray = #expect(throws: JSONValidator.Failure.self) { try JSONValidator.validate(input) }
        let fromBuffer = #expect(throws: JSONValidator.Failure.self) {
            try input.withUnsafeBytes { try JSONValidator.validate($0) }
        }
        #expect(fromArray == fromBuffer)
        #expect(fromArray?.offset == 10)
    }

    @Test("maxDepth is configurable: two levels pass a limit of 2 and three do not")
    func customMaxDepth() throws {
        let two = Array("[[1]]".utf8)
        let three = Array("[[[1]]]".utf8)
        try two.withUnsafeBytes { try JSONValidator.validate($0, maxDepth: 2) }
        let failure = #expect(throws: JSONValidator.Failure.self) {
            try three.withUnsafeBytes { try JSONValidator.validate($0, maxDepth: 2) }
        }
        #expect(failure?.offset == 2)
    }

    @Test("Bytes that are not UTF-8 inside a string are rejected, as RFC 8259 §8.1 and Foundation require")
    func invalidUTF8IsRejected() {
        // A lone continuation byte, a truncated two-byte sequence, and an overlong encoding of '/'.
        let inputs: [[UInt8]] = [[0x22, 0x80, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xFF, 0x22]]
        for input in inputs {
            #expect(!foundationAccepts(input))
            #expect(!JSONValidator.isValid(input), "accepts \(input)")
        }
    }

    // MARK: Against Foundation

    /// Seeds of the random comparison: valid documents using every kind of token.
    static let seeds: [String] = [
        #"{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"x\ny"}}"#,
        #"[{"id":1,"tags":["x","y"]},{"id":2,"tags":[]}]"#,
        #"{"num":-0.5e+10,"esc":"q\"b\\s\/u\u00e9","emoji":"🎉"}"#,
        #"[[[1]],[[2,[3]]],{"k":{"k":{"k":0}}}]"#,
        #""plain string with spaces""#,
        " { \"spaced\" : [ 1 , 2 ] } ",
        #"{"t":true,"f":false,"n":null,"z":0,"neg":-12,"frac":0.125,"exp":1E+2}"#,
        #"[1e5,2E-3,0.0,-0,12345678901234567890]"#,
        #"{"unicode":"héllo ✓ 日本","nested":{"arr":[{"a":[]},{"b":{}}]}}"#,
        "123",
        "[\"\\t\\r\\n\\b\\f\"]",
    ]

    /// What mutations insert: JSON's structural characters, pieces of literals and numbers, quotes,
    /// escapes, whitespace, a control character and a non-ASCII scalar. No 'd' or 'D', so that no
    /// mutation writes a lone surrogate escape (which RFC 8259 allows and Foundation refuses).
    static let alphabet: [Unicode.Scalar] = Array(#"{}[]:,"\ 0159-+.eEtrufalsn'x/"#.unicodeScalars)
        + ["\t", "\n", "\r", "\u{01}", "\u{1F}", "é", "🎉"]

    /// Applies 1 to 3 random edits to the scalars of `seed`: delete, insert, replace, swap or duplicate.
    static func mutate(_ seed: String, using generator: inout SeededGenerator) -> [UInt8] {
        var scalars = Array(seed.unicodeScalars)
        for _ in 0..<Int.random(in: 1...3, using: &generator) {
            let position = Int.random(in: 0...scalars.count, using: &generator)
            let atScalar = min(position, max(0, scalars.count - 1))
            switch Int.random(in: 0..<5, using: &generator) {
            case 0 where !scalars.isEmpty:
                scalars.remove(at: atScalar)
            case 1:
                scalars.insert(alphabet.randomElement(using: &generator)!, at: position)
            case 2 where !scalars.isEmpty:
                scalars[atScalar] = alphabet.randomElement(using: &generator)!
            case 3 where scalars.count > 1:
                let i = Int.random(in: 0..<(scalars.count - 1), using: &generator)
                scalars.swapAt(i, i + 1)
            default:
                guard !scalars.isEmpty else { break }
                let start = Int.random(in: 0..<scalars.count, using: &generator)
                let end = min(scalars.count, start + Int.random(in: 1...6, using: &generator))
                scalars.insert(contentsOf: scalars[start..<end], at: end)
            }
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        return Array(text.utf8)
    }

    @Test("On 600 randomly mutated documents (fixed seed) the validator and JSONSerialization agree on validity")
    func agreesWithFoundation() {
        var generator = SeededGenerator(seed: 0xC0FFEE)
        var agreedValid = 0
        var agreedInvalid = 0
        var trailingCommas = 0
        var hugeNumbers = 0
        var disagreements: [String] = []
        var inputs = Self.seeds.map { Array($0.utf8) }
        for index in 0..<600 {
            inputs.append(Self.mutate(Self.seeds[index % Self.seeds.count], using: &generator))
        }
        for input in inputs {
            let ours = Result<Void, JSONValidator.Failure> { () throws(JSONValidator.Failure) in
                try JSONValidator.validate(input)
            }
            let foundation = foundationAccepts(input)
            switch (ours, foundation) {
            case (.success, true): agreedValid += 1
            case (.failure, false): agreedInvalid += 1
            case (.failure(let failure), true) where Self.isTrailingComma(input, at: failure.offset):
                // Foundation tolerates a comma before ']' or '}'; RFC 8259 does not.
                trailingCommas += 1
            case (.success, false) where Self.containsOverflowingNumber(input):
                // RFC 8259 §6 leaves the range of numbers to implementations; Foundation refuses
                // numbers beyond Double, the validator only checks the grammar.
                hugeNumbers += 1
            default:
                let verdict = (try? ours.get()) != nil ? "validator accepts" : "validator rejects (\(ours))"
                disagreements.append("\(verdict), Foundation \(foundation ? "accepts" : "rejects"): "
                                     + String(decoding: input, as: UTF8.self).debugDescription)
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements:\n\(disagreements.prefix(20).joined(separator: "\n"))")
        // The comparison means something only if the mutations produce both kinds of input.
        #expect(agreedValid >= 50, "only \(agreedValid) valid inputs")
        #expect(agreedInvalid >= 200, "only \(agreedInvalid) invalid inputs")
        #expect(agreedValid + agreedInvalid + trailingCommas + hugeNumbers == inputs.count)
    }

    /// Whether the byte at `offset` closes an array or object right after a comma.
    static func isTrailingComma(_ input: [UInt8], at offset: Int) -> Bool {
        guard offset < input.count, input[offset] == UInt8(ascii: "]") || input[offset] == UInt8(ascii: "}") else {
            return false
        }
        let before = input[..<offset].last { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        return before == UInt8(ascii: ",")
    }

    /// Whether a number outside strings overflows a Double.
    static func containsOverflowingNumber(_ input: [UInt8]) -> Bool {
        var inString = false
        var escaped = false
        var token = ""
        var found = false
        func endToken() {
            if !token.isEmpty, let value = Double(token), value.isInfinite { found = true }
            token = ""
        }
        for byte in input {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            if byte == UInt8(ascii: "\"") {
                endToken()
                inString = true
            } else if "0123456789+-.eE".utf8.contains(byte) {
                token.append(Character(Unicode.Scalar(byte)))
            } else {
                endToken()
            }
        }
        endToken()
        return found
    }
}

func foundationAccepts(_ input: [UInt8]) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(input), options: .fragmentsAllowed)) != nil
}
