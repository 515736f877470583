@testable import ConveyorGateway
import ConveyorProtocol
import Testing

@Suite struct TokenFileTests {
    @Test("a token line gives its secret, scopes, rate, burst and name; comments and blank lines are skipped")
    func parsesLines() throws {
        let tokens = try TokenFile.parse("""
            # comment
            0123456789abcdef01 scopes=submit,read rate=50 burst=80 name=web   # trailing comment

            fedcba9876543210fe scopes=admin
            """)
        #expect(tokens.count == 2)
        #expect(tokens[0].name == "web" && tokens[0].scopes == [.submit, .read] && tokens[0].rate == 50 && tokens[0].burst == 80)
        #expect(tokens[1].name == "line4" && tokens[1].allows(.read) && tokens[1].allows(.submit) && tokens[1].rate == TokenFile.defaultRate)
        #expect(!tokens[0].allows(.admin))
    }

    @Test("a bad line is refused with its number and what to write", arguments: [
        ("short scopes=read", "at least 16"),
        ("0123456789abcdef01 rate=5", "no scopes="),
        ("0123456789abcdef01 scopes=write", "scope 'write'"),
        ("0123456789abcdef01 scopes=read rate=-1", "rate= must be"),
        ("0123456789abcdef01 scopes=read colour=red", "unknown key 'colour'"),
        ("0123456789abcdef01 scopes=read\n0123456789abcdef01 scopes=admin", "earlier line"),
    ])
    func refusesBadLines(line: String, text: String) {
        #expect {
            _ = try TokenFile.parse(line, path: "t")
        } throws: { "\($0)".hasPrefix("t:") && "\($0)".contains(text) }
    }
}

@Suite struct GatewayParsingTests {
    @Test("the bearer header: scheme in any case, spaces around the secret; anything else is no token")
    func bearer() {
        #expect(Authenticator.bearer("Bearer abc") == Array("abc".utf8))
        #expect(Authenticator.bearer("bearer   abc  ") == Array("abc".utf8))
        #expect(Authenticator.bearer("Basic abc") == nil)
        #expect(Authenticator.bearer("Bearer ") == nil)
        #expect(Authenticator.bearer("Bearerabc") == nil)
        #expect(Authenticator.bearer(nil) == nil)
    }

    @Test("the authenticator finds the token whose secret was presented, and only that one")
    func authenticator() {
        let tokens = [GatewayToken(name: "a", secret: "aaaaaaaaaaaaaaaa", scopes: [.read], rate: 1),
                      GatewayToken(name: "b", secret: "bbbbbbbbbbbbbbbb", scopes: [.read], rate: 1)]
        let authenticator = Authenticator(tokens: tokens)
        #expect(authenticator.index(presented: Array("bbbbbbbbbbbbbbbb".utf8)) == 1)
        #expect(authenticator.index(presented: Array("bbbbbbbbbbbbbbb".utf8)) == nil)
        #expect(authenticator.index(presented: []) == nil)
    }

    @Test("a token bucket gives its burst, then says how long to wait, and refills at its rate")
    func bucket() {
        let start = ContinuousClock.now
        let bucket = TokenBucket(rate: 2, burst: 2)
        #expect(bucket.take(now: start) == nil && bucket.take(now: start) == nil)
        let wait = bucket.take(now: start)
        #expect(wait != nil && abs(wait! - 0.5) < 0.01)
        #expect(bucket.take(now: start + .milliseconds(600)) == nil)
    }

    @Test("the object scanner keeps each value's bytes as they came, nested and escaped ones included")
    func scanner() throws {
        let text = Array(#" {"name" : "e\"cho", "args": {"a": [1, {"b": "}"}], "n": 1.50}, "x": null } "#.utf8)
        let members = try JSONObjectScanner.members(text[...])
        #expect(members.map(\.key) == ["name", "args", "x"])
        #expect(JSONObjectScanner.string(members[0].value) == #"e"cho"#)
        #expect(String(decoding: members[1].value, as: UTF8.self) == #"{"a": [1, {"b": "}"}], "n": 1.50}"#)
        #expect(String(decoding: members[2].value, as: UTF8.self) == "null")
        #expect(JSONObjectScanner.items(Array(" [1, [2,3] ,{}] ".utf8)[...]).map { String(decoding: $0, as: UTF8.self) } == ["1", "[2,3]", "{}"])
        #expect(JSONObjectScanner.items(Array("[]".utf8)[...]).isEmpty)
    }

    @Test("a submit body: unknown fields, wrong types and bad options are refused naming the field")
    func submitRequest() throws {
        func parse(_ json: String) throws(APIError) -> SubmitRequest {
            try SubmitRequest(members: try SubmitRequest.body(Array(json.utf8)), defaults: .default, callbacks: nil)
        }
        let task = try parse(#"{"name":"echo","args":[1, 2.0],"options":{"priority":5.0,"attempts":3,"require_consumer":false}}"#)
        #expect(task.name == "echo" && task.args.text == "[1, 2.0]" && task.options.priority == 5 && task.options.maxAttempts == 3)
        for (json, field) in [
            (#"{"name":"echo","colour":1}"#, "colour"), (#"{"name":5}"#, "name"), (#"{"args":{}}"#, "name"),
            (#"{"name":"echo","options":{"priority":1.5}}"#, "options.priority"), (#"{"name":"echo","options":[]}"#, "options"),
            (#"{"name":"echo","options":{"tracestate":"a=b"}}"#, "options.tracestate"), (#"{"name":"a","name":"b"}"#, "name"),
            (#"{"name":"echo","callback_url":"ftp://x"}"#, "callback_url"),
        ] {
            #expect { _ = try parse(json) } throws: { ($0 as? APIError)?.message.hasPrefix(field) == true }
        }
        #expect { _ = try parse("[1]") } throws: { ($0 as? APIError)?.code == "bad_json" }
        #expect { _ = try parse(#"{"name": "#) } throws: { ($0 as? APIError)?.code == "bad_json" }
    }

    @Test("an idempotency key maps to one id per token: the same key and token, the same id")
    func idempotentIDs() {
        let id = Gateway.taskID(token: "web", key: "order-1")
        #expect(id == Gateway.taskID(token: "web", key: "order-1"))
        #expect(id != Gateway.taskID(token: "ops", key: "order-1"))
        #expect(id != Gateway.taskID(token: "web", key: "order-1", index: 0))
        #expect(id.utf8.count == 27 && id.hasPrefix("i") && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
    }

    @Test("loopback addresses only without TLS")
    func loopback() {
        #expect(GatewayConfiguration.isLoopback("127.0.0.1") && GatewayConfiguration.isLoopback("127.8.9.1"))
        #expect(GatewayConfiguration.isLoopback("::1") && GatewayConfiguration.isLoopback("localhost"))
        #expect(!GatewayConfiguration.isLoopback("0.0.0.0") && !GatewayConfiguration.isLoopback("10.0.0.1") && !GatewayConfiguration.isLoopback("127.0.0"))
    }
}

@Suite struct DashboardSessionTests {
    @Test("a session is found by its cookie, ends, expires; the cookie is HttpOnly and SameSite=Strict, Secure under TLS")
    func sessions() {
        let sessions = DashboardSessions(secureCookies: false)
        let start = ContinuousClock.now
        let (session, cookie) = sessions.create(token: 2, now: start)
        #expect(cookie.hasPrefix("conveyor_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"))
        #expect(DashboardSessions(secureCookies: true).create(token: nil).cookie.hasSuffix("; Secure"))
        let value = String(cookie.split(separator: ";")[0].dropFirst("conveyor_session=".count))
        #expect(value.count == 64 && session.csrf.count == 64 && value != session.csrf)
        #expect(DashboardSessions.cookie("conveyor_session", in: ["a=1; conveyor_session=\(value); b=2"]) == value)
        #expect(DashboardSessions.cookie("conveyor_session", in: ["conveyor_sessionx=1"]) == nil)
        #expect(DashboardSessions.csrfMatches(session, session.csrf))
        #expect(!DashboardSessions.csrfMatches(session, nil) && !DashboardSessions.csrfMatches(session, "")
                && !DashboardSessions.csrfMatches(session, String(session.csrf.reversed())) || session.csrf == String(session.csrf.reversed()))
    }

    @Test("form fields decode + as a space and percent escapes (a token with + or / survives)")
    func formFields() {
        let fields = DashboardSessions.formFields(Array("token=ab%2Bcd%2F%3D&x=a+b&empty=".utf8))
        #expect(fields["token"] == "ab+cd/=" && fields["x"] == "a b" && fields["empty"] == "")
    }

    @Test("HTML escaping of what the pages show")
    func escaping() {
        #expect(DashboardAssets.escape(#"<b a="x">'&'"#) == "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;")
        #expect(DashboardAssets.signIn(problem: "<script>").contains("&lt;script&gt;"))
        #expect(!DashboardAssets.dashboard(csrf: "c", who: "<i>", admin: false).contains("<i>"))
    }

    @Test("TLS lifts the loopback-only rule, not --no-auth's")
    func tlsAndListen() {
        var configuration = GatewayConfiguration()
        configuration.host = "0.0.0.0"
        configuration.tokens = [GatewayToken(name: "t", secret: "0123456789abcdef01", scopes: [.read], rate: 1)]
        #expect(configuration.problem?.contains("loopback") == true)
        configuration.tls = .init(certificateFile: "c.pem", keyFile: "k.pem")
        #expect(configuration.problem == nil)
        configuration.tokens = []
        configuration.noAuth = true
        #expect(configuration.problem?.contains("--no-auth") == true)
    }
}
