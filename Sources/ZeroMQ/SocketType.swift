import CZMQ

/// The ZeroMQ socket patterns Conveyor uses.
public enum SocketType: Sendable, CaseIterable, CustomStringConvertible {
    case pair, pub, sub, req, rep, dealer, router, pull, push

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        }
    }

    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .pub: "PUB"
        case .sub: "SUB"
        case .req: "REQ"
        case .rep: "REP"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .pull: "PULL"
        case .push: "PUSH"
        }
    }
}

/// Flags for sends (`ZMQ_DONTWAIT`, `ZMQ_SNDMORE`).
public struct SendFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Fail with "would block" instead of waiting (`ZMQ_DONTWAIT`).
    public static let dontWait = SendFlags(rawValue: ZMQ_DONTWAIT)
    /// More frames of this message follow (`ZMQ_SNDMORE`).
    public static let more = SendFlags(rawValue: ZMQ_SNDMORE)
}

/// Flags for receives (`ZMQ_DONTWAIT`).
public struct ReceiveFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Return nothing instead of waiting (`ZMQ_DONTWAIT`).
    public static let dontWait = ReceiveFlags(rawValue: ZMQ_DONTWAIT)
}
