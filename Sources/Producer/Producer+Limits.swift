public import ConveyorProtocol
import Foundation

/// What ``Producer/setLimit(name:_:)`` or ``Producer/clearLimit(name:)`` left at the broker.
public struct LimitOutcome: Sendable, Equatable {
    public let name: String
    /// Whether this request changed the name's limits.
    public let changed: Bool
    /// The name's limits and where it stands now; `nil` when it has none.
    public let figures: LimitFigures?
    /// Tasks of the name waiting in the broker's queue, and whether a consumer serves it.
    public let queued: Int
    public let served: Bool
}

extension Producer {
    /// Sets global limits on the dispatch of tasks named `name` (docs/PROTOCOL.md §4.8.5),
    /// enforced by the broker across every consumer: the fields `limit` gives replace those set
    /// before (a new rate without a burst takes the default burst); the others stay. Durable.
    /// Needs the admin role where the broker authenticates clients.
    /// - Throws: ``ProducerError/protocolError(_:)`` naming a value out of range, and from a
    ///   broker too old to limit; ``ProducerError/refused(_:)`` without the admin role.
    public func setLimit(name: String, _ limit: NameLimit) async throws -> LimitOutcome {
        try await limitRequest(LimitRequest(name: name, limit: limit))
    }

    /// Removes every limit of `name` (its weight goes back to 1).
    public func clearLimit(name: String) async throws -> LimitOutcome {
        try await limitRequest(LimitRequest(name: name, clear: true))
    }

    private func limitRequest(_ request: LimitRequest) async throws -> LimitOutcome {
        let json = try await adminRequest(.limit, [Array(try JSONEncoder().encode(request))])
        struct Reply: Decodable {
            let name: String?
            let changed: Bool?
            let limit: LimitFigures?
            let queued: Int?
            let served: Bool?
            let error: String?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(json.bytes)) else {
            throw ProducerError.unexpectedReply("the broker's LIMIT_REPLY does not decode: \(json.text)")
        }
        if let error = reply.error { throw ProducerError.protocolError(error) }
        return LimitOutcome(name: reply.name ?? request.name, changed: reply.changed ?? false, figures: reply.limit,
                            queued: reply.queued ?? 0, served: reply.served ?? false)
    }
}
