import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed libzmq call: the errno it left, libzmq's text for it, and what was being done.
///
/// `description` reads like `bind tcp://127.0.0.1:5555: Address already in use`.
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The errno value libzmq reported (`zmq_errno()`).
    public let code: Int32
    /// What was being done, e.g. `bind tcp://127.0.0.1:5555`.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// libzmq's text for `code` (`zmq_strerror`).
    public var message: String { String(cString: zmq_strerror(code)) }

    public var description: String { "\(operation): \(message)" }

    /// The context was terminated or shut down: blocking loops should end.
    public var isContextTerminated: Bool { code == ETERM }
    /// A non-blocking call (or one with a timeout) could not complete now.
    public var isWouldBlock: Bool { code == EAGAIN }
    /// The message is larger than `maxMessageSize` allows, or a ROUTER peer is unknown.
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }

    static let terminatedCode = ETERM
}

/// The outcome of a libzmq call that may legitimately find nothing to do.
enum CallResult {
    case done(Int32)
    case wouldBlock
}

/// The one place where libzmq return codes become Swift values or errors.
///
/// Reads errno at once, retries `EINTR`, reports `EAGAIN` as `.wouldBlock`, and throws a
/// ``ZMQError`` naming `operation` for anything else.
@inline(__always)
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> CallResult {
    while true {
        let rc = body()
        if rc >= 0 { return .done(rc) }
        let code = zmq_errno()
        if code == EINTR { continue }
        if code == EAGAIN { return .wouldBlock }
        throw ZMQError(code: code, operation: operation())
    }
}

/// Like ``zmqCall(_:_:)`` for calls where `EAGAIN` is an error too.
@inline(__always)
@discardableResult
func zmqCheck(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(code: code, operation: operation())
    }
}
