public import ConveyorProtocol
import ConveyorSystem
import Foundation
public import ZeroMQ

/// Everything a producer can be told at start.
public struct ProducerConfiguration: Sendable {
    /// The broker's frontend endpoint.
    public var broker = "tcp://127.0.0.1:5555"
    /// The broker's CURVE public key (32 bytes), for a broker with CURVE on: the connection is
    /// encrypted and the broker authenticated.
    public var curveServerKey: [UInt8]?
    /// The producer's own CURVE key pair, for a broker that authenticates its clients
    /// (`--curve-clients-file`): its public key must be on the broker's clients file, and its
    /// name there is the producer's identity. `nil`: a fresh key pair per connection, which a
    /// broker without a clients file accepts.
    public var curveClientKeys: CurveKeyPair?
    /// Tasks submitted and not yet finished, at most; further submits wait for a free slot. (A
    /// task of ``Producer/submitDetached(batch:)`` counts only until the broker accepts it.)
    public var window = 1_000
    /// How long the broker has to answer a submit, status, cancel or stats request.
    public var requestTimeout: Duration = .seconds(10)
    /// Added to a task's own timeout before the producer stops waiting for its result.
    public var resultGrace: Duration = .seconds(5)
    /// Tasks sent in one SUBMIT message at most.
    public var batch = 128
    /// ZMTP heartbeat interval (`ZMQ_HEARTBEAT_IVL`); a connection silent for `liveness`
    /// intervals is dropped and re-established, and the producer then resubmits every task it has
    /// no result for (safe: the broker treats a known id as the same task).
    public var heartbeatInterval: Duration = .seconds(1)
    public var liveness = 4
    /// For command-line tools: while the producer has never reached its broker, a connection the
    /// transport refused or could not make (libzmq retries it), or a failed handshake, fails every
    /// waiting request at once with ``ProducerError/unreachable(_:)``, and later requests too
    /// until a connection is made, instead of waiting out the request timeout. Once it has been
    /// connected, a lost connection is waited out as before (a restarting broker), and a busy
    /// broker is never taken for an absent one.
    public var failWhenUnreachable = false
    /// Called (on the producer's I/O thread: keep it short) with what the broker says about a
    /// task that does not change its outcome, such as "no connected consumer serves 'ecko';
    /// served now: echo, sleep; the task waits for one up to its timeout (300 s)" (`NOTICE`).
    /// `nil`: logged as a warning.
    public var onNotice: (@Sendable (_ taskID: String, _ text: String) -> Void)?

    public init(broker: String = "tcp://127.0.0.1:5555") {
        self.broker = broker
    }
}

/// One task of a batch for ``Producer/submit(batch:)``.
public struct TaskSubmission: Sendable {
    public var name: String
    public var args: RawJSON
    public var options: TaskOptions
    /// The task id; `nil` for a new one.
    public var id: String?

    public init(_ name: String, json args: RawJSON, options: TaskOptions = .default, id: String? = nil) {
        self.name = name
        self.args = args
        self.options = options
        self.id = id
    }
}

/// The broker's answer to one task of ``Producer/submitDetached(batch:)``.
public struct TaskReceipt: Sendable, Equatable {
    /// The task's id (the one the broker accepted it under).
    public let id: String
    /// `nil` when the broker accepted the task; otherwise the result it ended with here:
    /// `rejected` (the broker's reason in ``TaskResult/errorMessage``), `timeout` (no answer within
    /// the request timeout) or `error` (a broker of another protocol version).
    public let refusal: TaskResult?

    public init(id: String, refusal: TaskResult?) {
        self.id = id
        self.refusal = refusal
    }

    /// Whether the broker accepted the task.
    public var isAccepted: Bool { refusal == nil }
}

/// What went wrong for a producer call.
public enum ProducerError: Error, Equatable, CustomStringConvertible {
    /// The broker refused the task; the reason is the broker's.
    case rejected(id: String, reason: String)
    /// The broker did not answer within the request timeout.
    case brokerTimeout(endpoint: String, waited: Duration)
    /// The producer was shut down (or its loop ended) before the call was answered.
    case closed
    /// The broker said the request broke the protocol.
    case protocolError(String)
    /// The broker refused the request or the connection: the producer's identity lacks the role
    /// it needs, or its CURVE key is not on the broker's clients file. The text is the broker's
    /// (`refused STATS: needs the admin role; …`) or says which.
    case refused(String)
    /// The broker could not be reached at all (``ProducerConfiguration/failWhenUnreachable``):
    /// the connection was refused or failed, or its handshake failed; the text says which.
    case unreachable(String)
    /// The task did not succeed (from ``TaskHandle/result(as:)``).
    case taskFailed(TaskResult)
    /// The result did not decode to the type asked for.
    case undecodableResult(String)
    /// The broker's reply could not be read: JSON that does not decode, or a state, result
    /// status or cancel outcome this producer does not know (a newer broker's).
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .rejected(let id, let reason): "task \(id) rejected: \(reason)"
        case .brokerTimeout(let endpoint, let waited): "no answer from the broker at \(endpoint) within \(waited)"
        case .closed: "the producer is closed"
        case .protocolError(let text): "the broker reported a protocol error: \(text)"
        case .refused(let text): "the broker refused it: \(text)"
        case .unreachable(let text): text
        case .taskFailed(let result): "task \(result.id) ended \(result.status.rawValue): \(result.errorMessage ?? result.body.text)"
        case .undecodableResult(let text): text
        case .unexpectedReply(let text): "unexpected reply from the broker: \(text)"
        }
    }
}

/// A finished task's outcome, as the broker delivered it.
public struct TaskResult: Sendable, Equatable {
    public let id: String
    public let status: TaskStatus
    /// The handler's result JSON when `status` is `ok`; otherwise `{"error": ..., "kind": ...}`.
    public let body: RawJSON
    /// Where and how the task ran (host, pid, thread, attempts), when known.
    public let info: ResultInfo?

    public init(id: String, status: TaskStatus, body: RawJSON, info: ResultInfo?) {
        self.id = id
        self.status = status
        self.body = body
        self.info = info
    }

    /// The error text of a task that did not succeed.
    public var errorMessage: String? {
        guard status != .ok else { return nil }
        struct ErrorBody: Decodable { let error: String }
        return (try? JSONDecoder().decode(ErrorBody.self, from: Data(body.bytes)))?.error
    }

    /// The error kind of a task that did not succeed.
    public var errorKind: ErrorKind? {
        guard status != .ok else { return nil }
        struct ErrorBody: Decodable { let kind: ErrorKind }
        return (try? JSONDecoder().decode(ErrorBody.self, from: Data(body.bytes)))?.kind
    }
}

/// The answer to ``Producer/status(id:)``.
public struct TaskStatusReport: Sendable, Equatable {
    public let id: String
    public let state: TaskState
    /// The result, when `state` is `done`.
    public let result: TaskResult?
    /// When a `scheduled` task comes due: wall clock, milliseconds since the Unix epoch.
    public let dueAt: UInt64?

    public init(id: String, state: TaskState, result: TaskResult?, dueAt: UInt64? = nil) {
        self.id = id
        self.state = state
        self.result = result
        self.dueAt = dueAt
    }
}

/// What a ``Producer/deadLetters(_:id:)`` request did.
public struct DeadLetterOutcome: Sendable, Equatable, Codable {
    public let action: DeadLetterAction
    /// Dead letters requeued or purged.
    public let count: Int

    public init(action: DeadLetterAction, count: Int) {
        self.action = action
        self.count = count
    }
}
