import ConveyorProtocol
import ConveyorSystem
import Synchronization
import ZeroMQ

/// What the producer does when a broker that authenticates clients (docs/SECURITY.md) refuses
/// it: a request its identity's roles do not allow, or its CURVE key as a whole.
extension Producer {
    /// How long a producer whose key the broker refused waits before it connects again (libzmq
    /// does not retry a connection refused in its handshake; a reloaded clients file may list the
    /// key by then).
    static let refusedReconnect: Duration = .seconds(8)

    /// The broker refused this producer's CURVE key in the handshake: everything unanswered fails
    /// at once, saying so, instead of waiting for the request timeout; the connection is tried
    /// again after ``refusedReconnect``.
    func refused(status: UInt32) {
        let error = ProducerError.refused(Self.refusedKeyText + " (ZAP status \(status))")
        logger.error("the broker refused this producer's key", metadata: ["broker": "\(configuration.broker)", "status": "\(status)"])
        reconnectAfterRefusal.store(monotonicNanoseconds() &+ Self.refusedReconnect.nanoseconds, ordering: .relaxed)
        table.withLock { $0.failUnanswered(with: error) }.perform()
    }

    /// While the broker's refusal stands (until the connection is tried again), requests are not
    /// sent (libzmq has no connection to queue them on): they fail at once, saying why. Returns
    /// whether it refused.
    func refusesSending() -> Bool {
        guard reconnectAfterRefusal.load(ordering: .relaxed) != 0 else { return false }
        table.withLock { $0.failUnanswered(with: .refused(Self.refusedKeyText)) }.perform()
        return true
    }

    static let refusedKeyText = "the broker refused this producer's CURVE key: its public key is not on the broker's clients file, or its roles do not let it connect to the frontend (submit or admin)"

    /// Connects again once the wait after a refused handshake is over.
    func reconnectIfRefused(_ socket: Socket) throws {
        let at = reconnectAfterRefusal.load(ordering: .relaxed)
        guard at != 0, monotonicNanoseconds() >= at else { return }
        reconnectAfterRefusal.store(0, ordering: .relaxed)
        try? socket.disconnect(configuration.broker)
        try socket.connect(configuration.broker)
    }

    /// An `ERROR` `refused COMMAND[ ID]: …` (docs/PROTOCOL.md §9.2): the request it answers fails
    /// with ``ProducerError/refused(_:)``.
    func answerRefusal(_ text: String) {
        guard let key = Self.refusedRequest(text) else {
            logger.error("the broker refused a request", metadata: ["error": "\(text)"])
            return
        }
        table.withLock { $0.answer(key, with: .failure(.refused(text))) }.perform()
    }

    /// The request an `ERROR` `refused COMMAND[ ID]: …` answers, if it is one this producer asks.
    static func refusedRequest(_ text: String) -> ReplyKey? {
        guard text.hasPrefix("refused "), let colon = text.range(of: ": ") else { return nil }
        let words = text[text.index(text.startIndex, offsetBy: "refused ".count)..<colon.lowerBound].split(separator: " ", maxSplits: 1)
        guard let command = words.first else { return nil }
        let id = words.count > 1 ? String(words[1]) : nil
        switch (command, id) {
        case ("STATS", nil): return .statistics
        case ("DEAD_LETTERS", nil): return .deadLetters
        case ("PURGE", nil): return .purge
        case ("PAUSE", nil): return .admin(.pause)
        case ("TASKS", nil): return .tasks
        case ("SCHEDULE", nil): return .admin(.schedule)
        case ("LIMIT", nil): return .admin(.limit)
        case ("STATUS", let id?): return .status(id)
        case ("CANCEL", let id?): return .cancel(id)
        default: return nil
        }
    }
}
