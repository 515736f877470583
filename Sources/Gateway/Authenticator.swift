import Synchronization

/// Finds the token of a request's `Authorization: Bearer` header and keeps each token's bucket.
final class Authenticator: Sendable {
    /// One token with its digest (what requests are compared against) and its bucket.
    struct Entry: Sendable {
        let token: GatewayToken
        let digest: [UInt8]
        let bucket: TokenBucket
    }

    let entries: [Entry]

    init(tokens: [GatewayToken]) {
        entries = tokens.map { Entry(token: $0, digest: Digest.sha256($0.secret), bucket: TokenBucket(rate: $0.rate, burst: $0.burst)) }
    }

    /// The entry whose secret `presented` is. Every token is compared, each in constant time
    /// (digests, so neither the position of a difference nor the length shows), so the time
    /// does not tell which token came close.
    func index(presented: [UInt8]) -> Int? {
        let digest = Digest.sha256(presented)
        var found: Int?
        for (index, entry) in entries.enumerated() {
            var difference: UInt8 = 0
            for i in 0..<32 { difference |= entry.digest[i] ^ digest[i] }
            if difference == 0 { found = index }
        }
        return found
    }

    /// The bearer secret of an `Authorization` header value, `nil` when it is not `Bearer X`.
    /// Read from the bytes (no Foundation on this path: it runs on every request).
    static func bearer(_ header: String?) -> [UInt8]? {
        guard var bytes = header.map({ Array($0.utf8) }) else { return nil }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count + 1, bytes[scheme.count] == 0x20,
              zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        var start = scheme.count
        while start < bytes.count, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        return start < bytes.count ? Array(bytes[start...]) : nil
    }
}

/// A token bucket: `burst` requests at most, refilled at `rate` a second.
final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
    }
    let rate: Double
    let burst: Double
    private let state: Mutex<State>

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        state = Mutex(State(tokens: burst, last: .now))
    }

    /// Whether a request's token is there now, without taking it.
    func hasToken(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            let elapsed = now - state.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return min(burst, state.tokens + max(0, seconds) * rate) >= 1
        }
    }

    /// Takes one request's token: `nil` when there was one, else the seconds until there is.
    func take(now: ContinuousClock.Instant = .now) -> Double? {
        state.withLock { state in
            let elapsed = now - state.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(burst, state.tokens + max(0, seconds) * rate)
            state.last = now
            if state.tokens >= 1 {
                state.tokens -= 1
                return nil
            }
            return (1 - state.tokens) / rate
        }
    }
}
