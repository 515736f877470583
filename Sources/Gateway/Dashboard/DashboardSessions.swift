import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// The dashboard's browser sessions (docs/GATEWAY.md, "Dashboard"). A browser signs in once with
/// a token of `--token-file`; it then holds a random session id in a cookie
/// (`HttpOnly; SameSite=Strict`, and `Secure` under TLS) and sends the session's CSRF token in a
/// header with every action, from a page of the same origin.
///
/// Sessions live in the gateway's memory (a restart signs everyone out), at most
/// ``maxSessions`` (the oldest goes first), each for ``lifetime``. The store is keyed by the
/// SHA-256 of the cookie's value, so a look-up's timing says nothing about a valid id.
final class DashboardSessions: Sendable {
    static let cookieName = "conveyor_session"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let maxSessions = 1_000
    static let lifetime: Duration = .seconds(12 * 3600)

    struct Session: Sendable {
        /// The token's index in the authenticator's entries; `nil` with `--no-auth`.
        let token: Int?
        let csrf: String
        let expires: ContinuousClock.Instant
        let created: ContinuousClock.Instant
    }

    private let sessions = Mutex<[[UInt8]: Session]>([:])
    let secureCookies: Bool

    init(secureCookies: Bool) { self.secureCookies = secureCookies }

    /// A new session for `token`, and the `Set-Cookie` value that carries it.
    func create(token: Int?, now: ContinuousClock.Instant = .now) -> (session: Session, cookie: String) {
        let id = Self.randomHex(32)
        let session = Session(token: token, csrf: Self.randomHex(32), expires: now + Self.lifetime, created: now)
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.created < $1.value.created }) {
                sessions[oldest.key] = nil
            }
            sessions[Digest.sha256(Array(id.utf8))] = session
        }
        return (session, cookie(value: id, maxAge: Int(Self.lifetime.components.seconds)))
    }

    /// The session of a request's cookie, when it has a live one.
    func session(of request: Request, now: ContinuousClock.Instant = .now) -> Session? {
        guard let id = Self.cookie(Self.cookieName, in: request.headers[values: .cookie]) else { return nil }
        let key = Digest.sha256(Array(id.utf8))
        return sessions.withLock { sessions in
            guard let session = sessions[key] else { return nil }
            if session.expires <= now {
                sessions[key] = nil
                return nil
            }
            return session
        }
    }

    /// Ends the session of the request's cookie; the `Set-Cookie` value that clears it.
    func end(_ request: Request) -> String {
        if let id = Self.cookie(Self.cookieName, in: request.headers[values: .cookie]) {
            let key = Digest.sha256(Array(id.utf8))
            _ = sessions.withLock { $0.removeValue(forKey: key) }
        }
        return cookie(value: "", maxAge: 0)
    }

    private func cookie(value: String, maxAge: Int) -> String {
        "\(Self.cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    /// Whether `presented` is the session's CSRF token (compared in constant time).
    static func csrfMatches(_ session: Session, _ presented: String?) -> Bool {
        guard let presented else { return false }
        let a = Digest.sha256(Array(session.csrf.utf8)), b = Digest.sha256(Array(presented.utf8))
        var difference: UInt8 = 0
        for i in 0..<32 { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// Whether a state-changing request comes from a page of this gateway: its `Origin` (which
    /// browsers send with every POST) is this gateway's own, `scheme://Host`; where a browser
    /// sends no origin (or `null`), its `Sec-Fetch-Site` (which no page can set) must say
    /// `same-origin`.
    static func isSameOrigin(_ request: Request, secure: Bool) -> Bool {
        guard let host = request.head.authority else { return false }
        if let origin = request.headers[.origin], origin != "null" {
            return origin == (secure ? "https://" : "http://") + host
        }
        return request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "same-origin"
    }

    /// The value of cookie `name` in `Cookie` header values.
    static func cookie(_ name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    static func randomHex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    static func formFields(_ body: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
