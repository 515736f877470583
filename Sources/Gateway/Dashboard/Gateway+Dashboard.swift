import ConveyorProducer
import ConveyorProtocol
import Foundation
import HTTPTypes
import Hummingbird

/// The dashboard's routes (docs/GATEWAY.md, "Dashboard"): the page at `/`, its script and style,
/// sign-in and sign-out, a snapshot and an event stream to read, and the actions. Reading needs
/// a session whose token has the read scope; actions the admin scope, this gateway's `Origin`
/// and the session's CSRF token in `X-CSRF-Token`.
extension Gateway {
    func addDashboardRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in self.dashboardPage(request) }
        router.get("/dashboard") { _, _ in Response(status: .seeOther, headers: [.location: "/"]) }
        router.get("/dashboard/app.js") { _, _ in Self.asset(DashboardAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/dashboard/app.css") { _, _ in Self.asset(DashboardAssets.style, type: "text/css; charset=utf-8") }
        router.post("/dashboard/login") { request, _ in try await self.signIn(request) }
        router.post("/dashboard/logout") { request, _ in
            _ = try self.dashboardCaller(request, scope: nil, action: true)
            return Response(status: .noContent, headers: [.setCookie: self.sessions.end(request)])
        }
        router.get("/dashboard/api/snapshot") { request, _ in
            _ = try self.dashboardCaller(request, scope: .read, action: false)
            await self.dashboard.refreshIfIdle()
            return JSONResponse.make(.ok, bytes: self.dashboard.latest().json ?? Array("{}".utf8))
        }
        router.get("/dashboard/events") { request, _ in
            _ = try self.dashboardCaller(request, scope: .read, action: false)
            return self.eventStream()
        }
        router.post("/dashboard/api/dead-letters/{action}") { request, context in
            let caller = try self.dashboardCaller(request, scope: .admin, action: true)
            guard let action = context.parameters.get("action").flatMap(DeadLetterAction.init(rawValue:)), action != .failures else {
                throw APIError.badField("action", "requeue or purge")
            }
            let id = try await self.actionTarget(request)
            let outcome = try await Self.broker { try await caller.producer.deadLetters(action, id: id) }
            self.logger.info("dashboard action", metadata: ["action": "dead-letters \(action.rawValue)", "id": "\(id ?? "all")",
                                                           "count": "\(outcome.count)", "token": "\(caller.name)"])
            return JSONResponse.make(.ok, #"{"action":"\#(action.rawValue)","count":\#(outcome.count)}"#)
        }
        router.post("/dashboard/api/names/{name}/{action}") { request, context in
            let caller = try self.dashboardCaller(request, scope: .admin, action: true)
            let name = try Self.taskID(context.parameters.get("name"))
            let action = context.parameters.get("action")
            guard action == "pause" || action == "resume" else { throw APIError.badField("action", "pause or resume") }
            let outcome = try await Self.broker {
                action == "pause" ? try await caller.producer.pause(name: name) : try await caller.producer.resume(name: name)
            }
            self.logger.info("dashboard action", metadata: ["action": "\(action ?? "")", "name": "\(name)", "changed": "\(outcome.changed)",
                                                           "token": "\(caller.name)"])
            await self.dashboard.refreshIfIdle()
            return JSONResponse.make(.ok, #"{"name":"# + JSONText.quoted(name) + #","paused":\#(outcome.paused),"changed":\#(outcome.changed),"queued":\#(outcome.queued)}"#)
        }
    }

    /// The dashboard, or the sign-in form without a session. With `--no-auth` a session is
    /// made on the first visit (the CSRF token still guards the actions).
    func dashboardPage(_ request: Request, problem: String? = nil) -> Response {
        if let session = sessions.session(of: request) {
            return page(DashboardAssets.dashboard(csrf: session.csrf, who: tokenName(session), admin: allows(session, .admin)))
        }
        if configuration.noAuth {
            let (session, cookie) = sessions.create(token: nil)
            return page(DashboardAssets.dashboard(csrf: session.csrf, who: "anonymous (--no-auth)", admin: true), cookie: cookie)
        }
        return page(DashboardAssets.signIn(problem: problem), status: problem == nil ? .ok : .unauthorized)
    }

    /// `POST /dashboard/login`, a form with `token`: a session for a token of the file.
    func signIn(_ request: Request) async throws -> Response {
        guard DashboardSessions.isSameOrigin(request, secure: configuration.tls != nil) else {
            return page(DashboardAssets.signIn(problem: "This sign-in did not come from this gateway's own page."), status: .forbidden)
        }
        if !signInFailures.hasToken() {
            return page(DashboardAssets.signIn(problem: "Too many failed sign-ins: wait a few seconds."), status: .tooManyRequests)
        }
        let body = try await self.body(request)
        let token = DashboardSessions.formFields(body)["token"].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !token.isEmpty, let index = authenticator.index(presented: Array(token.utf8)) else {
            _ = signInFailures.take()
            return dashboardPage(request, problem: "That token is not one of this gateway's (--token-file).")
        }
        guard authenticator.entries[index].token.allows(.read) else {
            return page(DashboardAssets.signIn(problem: "Token '\(authenticator.entries[index].token.name)' lacks the read scope the dashboard needs."),
                        status: .forbidden)
        }
        let (_, cookie) = sessions.create(token: index)
        logger.info("dashboard sign-in", metadata: ["token": "\(authenticator.entries[index].token.name)"])
        return Response(status: .seeOther, headers: [.location: "/", .setCookie: cookie, .cacheControl: "no-store"])
    }

    /// The caller of a dashboard request: its session's token and producer, when the session
    /// allows `scope` and, for an action, the request carries this gateway's origin and the
    /// session's CSRF token.
    func dashboardCaller(_ request: Request, scope: Scope?, action: Bool) throws(APIError) -> Caller {
        guard let session = sessions.session(of: request) else {
            throw APIError(.unauthorized, "unauthorized", "no dashboard session: sign in at / with a token of the gateway")
        }
        if let scope, !allows(session, scope) {
            throw APIError(.forbidden, "forbidden", "token '\(tokenName(session))' lacks the \(scope.rawValue) scope this needs")
        }
        if action {
            guard DashboardSessions.isSameOrigin(request, secure: configuration.tls != nil) else {
                throw APIError(.forbidden, "cross_origin", "Origin: an action must come from this gateway's own page")
            }
            guard DashboardSessions.csrfMatches(session, request.headers[DashboardSessions.csrfHeader]) else {
                throw APIError(.forbidden, "csrf", "X-CSRF-Token: missing or not this session's; reload the page")
            }
        }
        return Caller(name: tokenName(session), producer: session.token.map { producers[$0] } ?? producers[0])
    }

    private func allows(_ session: DashboardSessions.Session, _ scope: Scope) -> Bool {
        session.token.map { authenticator.entries[$0].token.allows(scope) } ?? true
    }

    private func tokenName(_ session: DashboardSessions.Session) -> String {
        session.token.map { authenticator.entries[$0].token.name } ?? "anonymous"
    }

    /// The `id` of an action's JSON body (`{}` or no body: all).
    private func actionTarget(_ request: Request) async throws -> String? {
        let body = try await self.body(request)
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        struct Target: Decodable { let id: String? }
        guard let target = try? JSONDecoder().decode(Target.self, from: Data(body)) else {
            throw APIError(.badRequest, "bad_json", "the body must be a JSON object such as {\"id\": \"t-1\"} or {}")
        }
        return try target.id.map { id throws(APIError) in try Self.taskID(id) }
    }

    /// `text/event-stream` of snapshots: one `snapshot` event per new one (about one a second),
    /// a comment every 15 s otherwise; it ends after 10 minutes (the browser reconnects) or when
    /// the gateway stops.
    private func eventStream() -> Response {
        let hub = dashboard
        var headers = Self.securityHeaders
        headers[.contentType] = "text/event-stream"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            await hub.refreshIfIdle()
            let end = ContinuousClock.now + .seconds(600)
            var seen = -1
            var quietSince = ContinuousClock.now
            while !hub.isStopped, ContinuousClock.now < end {
                let (json, version) = hub.latest()
                if let json, version != seen {
                    seen = version
                    var buffer = ByteBuffer(string: "event: snapshot\ndata: ")
                    buffer.writeBytes(json)
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                    quietSince = .now
                } else if ContinuousClock.now - quietSince > .seconds(15) {
                    try await writer.write(ByteBuffer(string: ": still here\n\n"))
                    quietSince = .now
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        })
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        .cacheControl: "no-store",
    ]

    private func page(_ html: String, status: HTTPResponse.Status = .ok, cookie: String? = nil) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        if let cookie { headers[.setCookie] = cookie }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    private static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
