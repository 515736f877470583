extension BrokerStatistics {
    /// Who is connected and how many (docs/SECURITY.md): the `security` object of `STATS`.
    public struct Security: Codable, Sendable, Equatable {
        /// Whether the broker authenticates clients (`--curve-clients-file`).
        public var authenticated: Bool
        /// Producers heard from recently, per identity (with client authentication only).
        public var producerIdentities: [String: Int]?
        /// TCP connections open on both sockets, and the cap (`--max-connections`, bounded by the
        /// open-files limit).
        public var connections: Int?
        public var connectionLimit: Int?
        /// Connections closed at once because the broker was at its cap, since it started.
        public var refusedAtCap: Int?
        /// Handshakes refused by the clients file (key not listed, or not allowed on the socket).
        public var refusedHandshakes: Int?

        enum CodingKeys: String, CodingKey {
            case authenticated, connections
            case producerIdentities = "producer_identities"
            case connectionLimit = "connection_limit"
            case refusedAtCap = "refused_at_cap"
            case refusedHandshakes = "refused_handshakes"
        }

        public init(authenticated: Bool, producerIdentities: [String: Int]? = nil, connections: Int? = nil,
                    connectionLimit: Int? = nil, refusedAtCap: Int? = nil, refusedHandshakes: Int? = nil) {
            self.authenticated = authenticated
            self.producerIdentities = producerIdentities
            self.connections = connections
            self.connectionLimit = connectionLimit
            self.refusedAtCap = refusedAtCap
            self.refusedHandshakes = refusedHandshakes
        }
    }
}
