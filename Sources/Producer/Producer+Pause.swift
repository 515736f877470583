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
        let json = try await adminRequest(.pause, [Array(action.utf8), Array(name.utf8)])
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

    /// Sends an operator's command (`PAUSE`, `SCHEDULE`, `LIMIT`) and returns the JSON of its
    /// reply; first checks the broker's HELLO lists the command's capability.
    func adminRequest(_ command: Command, _ frames: [[UInt8]]) async throws -> RawJSON {
        if let known = brokerCapabilities.withLock({ $0 }), let needed = Self.capability(of: command), !known.contains(needed) {
            throw brokerLacks(command)
        }
        guard case .admin(let json) = try await request(.admin(command, frames: frames), awaiting: .admin(command)) else {
            throw ProducerError.unexpectedReply("a reply of another kind came for a \(command)")
        }
        return json
    }

    static func capability(of command: Command) -> Capability? {
        switch command {
        case .pause: .pause
        case .schedule: .schedules
        case .limit: .limits
        default: nil
        }
    }

    /// What an operator's command fails with when the broker does not take it: its HELLO does
    /// not list the capability, or it answered `unknown command 0x…`.
    func brokerLacks(_ command: Command) -> ProducerError {
        let what = switch command {
        case .pause: "pause task names"
        case .schedule: "keep periodic schedules"
        default: "limit task names"
        }
        return .protocolError("the broker at \(configuration.broker) cannot \(what) (it does not take \(command), capability '\(Self.capability(of: command)?.rawValue ?? "")'): it is older than this producer; upgrade the broker")
    }
}
