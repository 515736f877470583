import Foundation

/// What a token may do. `admin` includes the others.
public enum Scope: String, Sendable, CaseIterable, Comparable {
    /// `POST /v1/tasks`, `POST /v1/tasks/batch`, `DELETE /v1/tasks/{id}`.
    case submit
    /// `GET /v1/tasks/{id}`, `GET /v1/tasks`, `GET /v1/stats`.
    case read
    /// Everything.
    case admin

    public static func < (a: Scope, b: Scope) -> Bool { a.rawValue < b.rawValue }
}

/// One bearer token of the gateway's token file (docs/GATEWAY.md, "The token file").
public struct GatewayToken: Sendable, Equatable {
    /// A name for logs, `GET /v1/tasks`'s producer and the idempotency ids; the token's line
    /// number (`line3`) when the line gives none. Never the secret.
    public let name: String
    public let secret: [UInt8]
    public let scopes: Set<Scope>
    /// Requests per second, kept as a token bucket of ``burst`` requests.
    public let rate: Double
    public let burst: Double
    /// The CURVE secret key file (`conveyor keygen --output`) this token's producer connects
    /// with, from `key=FILE`: the broker then sees the token as that key's identity (its roles,
    /// its fair share, its own tasks). `nil`: the gateway's own key, if any.
    public var keyFile: String?

    public init(name: String, secret: String, scopes: Set<Scope>, rate: Double, burst: Double? = nil) {
        self.name = name
        self.secret = Array(secret.utf8)
        self.scopes = scopes
        self.rate = rate
        self.burst = burst ?? max(1, rate)
    }

    public func allows(_ scope: Scope) -> Bool { scopes.contains(.admin) || scopes.contains(scope) }
}

/// A token file that cannot be used: which line, and what to write instead.
public struct TokenFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ path: String, line: Int?, _ message: String) {
        description = line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)"
    }
}

/// The token file: one token a line, `SECRET scopes=submit,read rate=100 [burst=200] [name=web]`;
/// `#` starts a comment, blank lines are skipped.
public enum TokenFile {
    /// The shortest secret taken: 16 characters (a guessable token is no token).
    public static let minimumSecretLength = 16
    /// The rate when a line gives none, requests per second.
    public static let defaultRate = 100.0

    public static func load(path: String) throws -> [GatewayToken] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenFileError(path, line: nil, "cannot read the token file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenFileError(path, line: nil, "the token file is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String = "tokens") throws -> [GatewayToken] {
        var tokens: [GatewayToken] = []
        var names = Set<String>()
        var secrets = Set<[UInt8]>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let secret = words.first.map(String.init) else { continue }
            func fail(_ message: String) -> TokenFileError { TokenFileError(path, line: number, message) }
            guard secret.utf8.count >= minimumSecretLength, secret.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  !secret.contains("=") else {
                throw fail("a token must be at least \(minimumSecretLength) characters of visible ASCII without '=' (make one with: openssl rand -hex 24)")
            }
            var scopes: Set<Scope>?
            var rate = defaultRate
            var burst: Double?
            var name = "line\(number)"
            var keyFile: String?
            for word in words.dropFirst() {
                let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw fail("'\(word)' is not KEY=VALUE: use scopes=, rate=, burst=, name= or key=") }
                switch parts[0] {
                case "scopes":
                    var set = Set<Scope>()
                    for item in parts[1].split(separator: ",") {
                        guard let scope = Scope(rawValue: String(item)) else {
                            throw fail("scope '\(item)' is not one of submit, read, admin")
                        }
                        set.insert(scope)
                    }
                    guard !set.isEmpty else { throw fail("scopes= needs at least one of submit, read, admin") }
                    scopes = set
                case "rate", "burst":
                    guard let value = Double(parts[1]), value.isFinite, value > 0, value <= 1_000_000 else {
                        throw fail("\(parts[0])= must be a number of requests per second above 0, at most 1000000")
                    }
                    if parts[0] == "rate" { rate = value } else { burst = value }
                case "name":
                    guard !parts[1].isEmpty, parts[1].utf8.count <= 64,
                          parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }) else {
                        throw fail("name= must be 1-64 characters of visible ASCII")
                    }
                    name = parts[1]
                case "key":
                    guard !parts[1].isEmpty else { throw fail("key= needs the path of a CURVE secret key file (conveyor keygen --output FILE)") }
                    keyFile = parts[1]
                default:
                    throw fail("unknown key '\(parts[0])': use scopes=, rate=, burst=, name= or key=")
                }
            }
            guard let scopes else { throw fail("the token has no scopes=: give scopes=submit,read or admin") }
            guard names.insert(name).inserted else { throw fail("name '\(name)' is used by an earlier token") }
            var token = GatewayToken(name: name, secret: secret, scopes: scopes, rate: rate, burst: burst)
            token.keyFile = keyFile
            guard secrets.insert(token.secret).inserted else { throw fail("this token is on an earlier line too") }
            tokens.append(token)
        }
        return tokens
    }
}
