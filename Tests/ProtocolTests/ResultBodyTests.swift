import ConveyorProtocol
import Foundation
import Testing

@Suite("Result bodies")
struct ResultBodyTests {
    static let awkwardStrings: [String] = [
        "", "plain", #"say "hi""#, #"back\slash"#, #"\\"#, #"\""#, "new\nline", "cr\rlf\r\n", "tab\there",
        "bell\u{07} nul\u{00} esc\u{1B} unit\u{1F} del\u{7F}", "slash / and </script>",
        "emoji 🎉 family 👩‍👩‍👧 flag 🇫🇷", "é vs e\u{0301}", "line sep\u{2028}para sep\u{2029}", "日本語",
        String((0..<0x20).map { Character(Unicode.Scalar($0)!) }),
    ]

    @Test("JSONText.quoted gives a JSON string that Foundation reads back as the same scalars", arguments: awkwardStrings)
    func quotedRoundTrips(text: String) throws {
        let quoted = JSONText.quoted(text)
        #expect(JSONValidator.isValid(Array(quoted.utf8)))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String)
        #expect(Array(parsed.unicodeScalars) == Array(text.unicodeScalars))
    }

    @Test("JSONText.quoted escapes quotes, backslashes and control characters and leaves the rest alone")
    func quotedExactText() {
        #expect(JSONText.quoted(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(JSONText.quoted("1\n2\r3\t4") == #""1\n2\r3\t4""#)
        #expect(JSONText.quoted("\u{00}\u{08}\u{0C}\u{1F}") == #""\u0000\u0008\u000c\u001f""#)
        #expect(JSONText.quoted("é/🎉\u{7F}") == "\"é/🎉\u{7F}\"")
    }

    @Test("errorBody is a JSON object with exactly the error text and the kind")
    func errorBodyParses() throws {
        let message = "args for 'x' are \"bad\"\nsee\\here 🎉"
        let body = JSONText.errorBody(.badArgs, message)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["error", "kind"])
        #expect(object["error"] as? String == message)
        #expect(object["kind"] as? String == "bad_args")
    }

    @Test("Every error kind's raw value appears as the kind of its error body")
    func errorBodyKinds() throws {
        let kinds: [(ErrorKind, String)] = [
            (.handlerError, "handler_error"), (.unknownTask, "unknown_task"), (.malformedJSON, "malformed_json"),
            (.badArgs, "bad_args"), (.timeout, "timeout"), (.cancelled, "cancelled"), (.rejected, "rejected"),
            (.attemptsExhausted, "attempts_exhausted"), (.consumerLost, "consumer_lost"), (.unsupported, "unsupported"),
        ]
        for (kind, raw) in kinds {
            #expect(kind.rawValue == raw)
            #expect(JSONText.errorBody(kind, "m") == #"{"error":"m","kind":"\#(raw)"}"#)
        }
    }

    @Test("ResultInfo.json decodes with JSONDecoder back to an equal value")
    func resultInfoRoundTrips() throws {
        let infos = [
            ResultInfo(host: "vm \"1\"\n", pid: 4242, thread: 3, process: 1, attempts: 2, elapsedMilliseconds: 12.5),
            ResultInfo(host: "h", pid: 1, thread: 0, attempts: 1, elapsedMilliseconds: 0.049),
            ResultInfo(attempts: 0),
            ResultInfo(elapsedMilliseconds: 1_234_567.125),
            ResultInfo(),
        ]
        for info in infos {
            let data = Data(info.json.utf8)
            #expect(JSONValidator.isValid(Array(data)))
            #expect(try JSONDecoder().decode(ResultInfo.self, from: data) == info, "\(info.json)")
        }
    }

    @Test("ResultInfo.json writes the documented keys in order and rounds elapsed_ms to microseconds")
    func resultInfoExactText() throws {
        let info = ResultInfo(host: "vm", pid: 4242, thread: 0, attempts: 1, elapsedMilliseconds: 0.0491)
        #expect(info.json == #"{"host":"vm","pid":4242,"thread":0,"attempts":1,"elapsed_ms":0.049}"#)
        #expect(ResultInfo().json == "{}")
        #expect(ResultInfo(attempts: 3).json == #"{"attempts":3}"#)
        let rounded = try JSONDecoder().decode(ResultInfo.self, from: Data(ResultInfo(elapsedMilliseconds: 1.23456).json.utf8))
        #expect(rounded.elapsedMilliseconds == 1.235)
    }

    @Test("ReadyInfo encodes with the snake_case keys of PROTOCOL.md §5.1 and decodes back")
    func readyInfoRoundTrips() throws {
        let info = ReadyInfo(capacity: 4, tasks: ["echo", "fail", "sha256", "sleep"], host: "vm", pid: 4242,
                             threads: 4, process: 0, heartbeatMilliseconds: 1000)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(info)
        #expect(String(decoding: data, as: UTF8.self)
                    == #"{"capacity":4,"heartbeat_ms":1000,"host":"vm","pid":4242,"process":0,"tasks":["echo","fail","sha256","sleep"],"threads":4}"#)
        #expect(try JSONDecoder().decode(ReadyInfo.self, from: data) == info)
    }
}
