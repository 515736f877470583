import ConveyorProtocol
import ConveyorSystem
import Foundation
import Synchronization
import ZeroMQ

/// What the producer knows of the broker's limit on one task's args, learnt from the broker's
/// `HELLO` (its `limits.max_message_size`), so that a task over it is refused at once, saying
/// why, instead of being sent: libzmq drops a connection that sends a message past the broker's
/// socket limit, and the producer would reconnect and resend it forever.
///
/// A new connection sends `HELLO`; until the answer comes, a task over the default limit (16 MiB)
/// is held back (2 s at most: a broker that does not answer `HELLO` gets it as it is), and a task
/// under it goes at once. Owned by the I/O thread.
struct MessageLimit {
    /// The broker's limit in bytes, once it said (0: not known).
    var known: Int64 = 0
    /// Submits over the default limit waiting for the broker's answer, and since when.
    var held: [Request] = []
    var heldSince: UInt64 = 0

    static let holdNanoseconds: UInt64 = 2_000_000_000

    /// The limit a task is judged by now.
    var limit: Int64 { known > 0 ? known : Limits.defaultMaxMessageSize }
}

extension Producer {
    /// `HELLO` on a new connection: the broker answers with its limits and capabilities (until
    /// then, those of the previous connection's broker are forgotten: it may be another one now).
    func sendHello(on socket: Socket) {
        brokerCapabilities.withLock { $0 = nil }
        var message = OutgoingMessage(.hello)
        message.append(Hello(role: .producer, software: "conveyor").json)
        _ = try? message.send(on: socket, flags: .dontWait)
    }

    /// The broker's `HELLO`: its limit is known from now on. Returns what was held, to send (or
    /// refuse) now.
    func brokerSaidHello(_ body: Frame) -> [Request] {
        let hello = try? JSONDecoder().decode(Hello.self, from: Data(body.bytes))
        let size = hello?.limits?.maxMessageSize ?? Limits.defaultMaxMessageSize
        brokerCapabilities.withLock { $0 = Set(hello?.capabilities ?? []) }
        return messageLimit.withLock { limit in
            limit.known = size > 0 ? size : Int64.max
            defer { limit.held = [] }
            return limit.held
        }
    }

    /// Held submits whose wait for the broker's answer is over: sent as they are.
    func heldPastTheirWait(now: UInt64) -> [Request] {
        messageLimit.withLock { limit in
            guard !limit.held.isEmpty, now &- limit.heldSince >= MessageLimit.holdNanoseconds else { return [] }
            // No answer: the broker will judge them (until its HELLO comes, nothing is refused here).
            limit.known = .max
            defer { limit.held = [] }
            return limit.held
        }
    }

    /// What to do with a submit of `size` bytes of args: `nil` to send it; otherwise it was held
    /// (returns `.held`) or is refused (`.refused` with the result it ends with).
    func checkSize(_ request: Request, id: String, size: Int, now: UInt64) -> SizeCheck {
        messageLimit.withLock { limit in
            guard Int64(size) > limit.limit else { return .send }
            if limit.known == 0 {
                if limit.held.isEmpty { limit.heldSince = now }
                limit.held.append(request)
                return .held
            }
            let reason = "args are \(Self.bytes(size)); the broker at \(configuration.broker) takes at most \(Self.bytes(Int(limit.known))) per task (its --max-message-size): send a reference to the data (a path or a URL) instead, or raise that limit"
            return .refused(Outcome(result: TaskResult(id: id, status: .rejected, kind: .rejected, message: reason),
                                    acceptError: ProducerError.rejected(id: id, reason: reason)))
        }
    }

    enum SizeCheck {
        case send, held
        case refused(Outcome)
    }

    /// "52,428,800 bytes (50.0 MiB)".
    static func bytes(_ count: Int) -> String {
        let mebibytes = Double(count) / 1_048_576
        return mebibytes >= 1 ? String(format: "%d bytes (%.1f MiB)", count, mebibytes) : "\(count) bytes"
    }
}
