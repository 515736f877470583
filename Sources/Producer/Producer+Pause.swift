public import ConveyorProtocol
import Foundation

/// What ``Producer/pause(name:)`` or ``Producer/resume(name:)`` did at the broker.
public struct PauseOutcome: Sendable, Equatable, Codable {
    /// The task name.
    public let name: String
    /// Whether the name is paused now.
    public let paused: Bool
    /// Whether this request changed that (`false`: it was paused, or not paused, already).
    public let changed: Bool
    /// Tasks of the name waiting in the broker's queue (after a resume: those that found no
    /// consumer with room yet).
    public let queued: Int
    /// Tasks of the name dispatched to consumers (running, or reserved in a prefetch buffer):
    /// a pause lets them finish.
    public let running: Int
    /// Whether a connected consumer serves the name.
    public let served: Bool

    public init(name: String, paused: Bool, changed: Bool, queued: Int, running: Int, served: Bool) {
        self.name = name
        self.paused = paused
        self.changed = changed
        self.queued = queued
        self.running = running
        self.served = served
    }
}

extension Producer {
    /// Pauses the dispatch of tasks named `name` at the broker (docs/PROTOCOL.md §4.8.4): they
    /// are still accepted and stay queued, and tasks already dispatched finish. Durable: a paused
    /// name stays paused across a broker restart until ``resume(name:)``. A name no task has had
    /// yet may be paused. Needs the admin role where the broker authenticates clients.
    /// - Throws: ``ProducerError/refused(_:)`` without the admin role;
    ///   ``ProducerError/protocolError(_:)`` for a name the broker refuses and from a broker too
    ///   old to pause; and as ``stats()``.
    public func pause(name: String) async throws -> PauseOutcome {
        try await pauseRequest("pause", name: name)
    }

    /// Resumes the dispatch of tasks named `name`: its queued tasks go to consumers at once.
    /// - Throws: as ``pause(name:)``.
    public func resume(name: String) async throws -> PauseOutcome {
        try await pauseRequest("resume", name: name)
    }

    private func pauseRequest(_ action: String, name: String) async throws -> PauseOutcome {
        if let known = brokerCapabilities.withLock({ $0 }), !known.contains(.pause) { throw brokerLacksPause() }
        guard case .pause(let json) = try await request(.pause(action: action, name: name), awaiting: .pause) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a PAUSE")
        }
        struct Reply: Decodable {
            let name: String?
            let paused: Bool?
            let changed: Bool?
            let queued: Int?
            let running: Int?
            let served: Bool?
            let error: String?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(json.bytes)) else {
            throw ProducerError.unexpectedReply("the broker's PAUSE_REPLY does not decode: \(json.text)")
        }
        if let error = reply.error { throw ProducerError.protocolError(error) }
        guard let paused = reply.paused, let changed = reply.changed else {
            throw ProducerError.unexpectedReply("PAUSE_REPLY without paused and changed: \(json.text)")
        }
        return PauseOutcome(name: reply.name ?? name, paused: paused, changed: changed, queued: reply.queued ?? 0,
                            running: reply.running ?? 0, served: reply.served ?? false)
    }

    /// What a pause fails with when the broker does not take `PAUSE`: its HELLO does not list the
    /// capability, or it answered `unknown command 0xc`.
    func brokerLacksPause() -> ProducerError {
        .protocolError("the broker at \(configuration.broker) cannot pause task names (it does not take PAUSE, capability 'pause'): it is older than this producer; upgrade the broker")
    }
}
