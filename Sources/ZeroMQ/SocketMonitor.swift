import CZMQ
import Synchronization

/// What a monitored socket reports (`ZMQ_EVENT_*`).
public enum SocketEventKind: Sendable, Equatable {
    case connected, connectDelayed, connectRetried
    case listening, bindFailed
    case accepted, acceptFailed
    case closed, closeFailed, disconnected
    case monitorStopped
    case handshakeFailedNoDetail, handshakeSucceeded, handshakeFailedProtocol, handshakeFailedAuth
    case other(UInt16)

    init(code: UInt16) {
        switch Int32(code) {
        case ZMQ_EVENT_CONNECTED: self = .connected
        case ZMQ_EVENT_CONNECT_DELAYED: self = .connectDelayed
        case ZMQ_EVENT_CONNECT_RETRIED: self = .connectRetried
        case ZMQ_EVENT_LISTENING: self = .listening
        case ZMQ_EVENT_BIND_FAILED: self = .bindFailed
        case ZMQ_EVENT_ACCEPTED: self = .accepted
        case ZMQ_EVENT_ACCEPT_FAILED: self = .acceptFailed
        case ZMQ_EVENT_CLOSED: self = .closed
        case ZMQ_EVENT_CLOSE_FAILED: self = .closeFailed
        case ZMQ_EVENT_DISCONNECTED: self = .disconnected
        case ZMQ_EVENT_MONITOR_STOPPED: self = .monitorStopped
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: self = .handshakeFailedNoDetail
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: self = .handshakeSucceeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: self = .handshakeFailedProtocol
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: self = .handshakeFailedAuth
        default: self = .other(code)
        }
    }
}

/// One event from a monitored socket: what happened, its value (a file descriptor, an errno or a
/// retry interval, depending on the kind) and the endpoint concerned.
public struct SocketEvent: Sendable, Equatable {
    public let kind: SocketEventKind
    public let value: UInt32
    public let endpoint: String
}

/// The events a monitor reports (`ZMQ_EVENT_*` bits), for ``Socket/startMonitor(endpoint:events:)``.
public struct SocketEventMask: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let connected = SocketEventMask(rawValue: ZMQ_EVENT_CONNECTED)
    public static let listening = SocketEventMask(rawValue: ZMQ_EVENT_LISTENING)
    public static let accepted = SocketEventMask(rawValue: ZMQ_EVENT_ACCEPTED)
    public static let acceptFailed = SocketEventMask(rawValue: ZMQ_EVENT_ACCEPT_FAILED)
    public static let closed = SocketEventMask(rawValue: ZMQ_EVENT_CLOSED)
    public static let disconnected = SocketEventMask(rawValue: ZMQ_EVENT_DISCONNECTED)
    public static let monitorStopped = SocketEventMask(rawValue: ZMQ_EVENT_MONITOR_STOPPED)
    public static let handshakeSucceeded = SocketEventMask(rawValue: ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
    public static let handshakeFailedAuth = SocketEventMask(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
    public static let handshakeFailedProtocol = SocketEventMask(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    public static let handshakeFailedNoDetail = SocketEventMask(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    public static let all = SocketEventMask(rawValue: ZMQ_EVENT_ALL)
}

extension Socket {
    /// Makes this socket report `events` on a PAIR socket bound to `endpoint` (an `inproc://`
    /// name; `zmq_socket_monitor`), for a ``SocketMonitor`` made with
    /// ``SocketMonitor/init(context:endpoint:)`` on another thread. Call it on this socket's
    /// thread, after that monitor connected if no event may be lost (libzmq drops events while
    /// nothing is connected). Monitoring stops when this socket closes.
    public func startMonitor(endpoint: String, events: SocketEventMask) throws(ZMQError) {
        try zmqCheck("zmq_socket_monitor \(endpoint)") { zmq_socket_monitor(handle, endpoint, events.rawValue) }
    }
}

/// Reads a socket's events (`zmq_socket_monitor`) through an `inproc://` PAIR socket.
///
/// Thread rules: made with ``init(_:)``, create the monitor on the thread that owns the
/// monitored socket; the monitor's own socket then belongs to that thread too. Made with
/// ``init(context:endpoint:)``, it belongs to the thread that made it, and the monitored socket's
/// thread calls ``Socket/startMonitor(endpoint:events:)``.
public final class SocketMonitor {
    private static let counter = Atomic<Int>(0)
    let pair: Socket
    private weak var monitored: Socket?

    /// A monitor that reads the events another thread's socket reports to `endpoint` (see
    /// ``Socket/startMonitor(endpoint:events:)``): connects a PAIR socket to it, which `inproc`
    /// allows before the other side binds. Its queue has no limit, so the libzmq I/O thread that
    /// reports an event never waits for this reader (libzmq's own monitor socket would block it
    /// once a bounded queue filled).
    public init(context: Context, endpoint: String) throws(ZMQError) {
        pair = try Socket(context, type: .pair)
        try pair.set(.linger, 0)
        try pair.set(.receiveHighWaterMark, 0)
        try pair.connect(endpoint)
    }

    /// Starts monitoring `socket` for all events.
    public init(_ socket: Socket) throws(ZMQError) {
        let number = SocketMonitor.counter.add(1, ordering: .relaxed).newValue
        let endpoint = "inproc://conveyor-monitor-\(number)"
        try zmqCheck("zmq_socket_monitor \(endpoint)") { zmq_socket_monitor(socket.handle, endpoint, ZMQ_EVENT_ALL) }
        pair = try Socket(socket.context, type: .pair)
        try pair.connect(endpoint)
        monitored = socket
    }

    deinit {
        if let monitored {
            zmq_socket_monitor(monitored.handle, nil, 0)
        }
    }

    /// The next event, or `nil` if none came within `timeout`.
    public func next(timeout: Duration?) throws(ZMQError) -> SocketEvent? {
        var poller = Poller()
        poller.add(pair)
        guard try poller.poll(timeout: timeout) > 0, let frames = try pair.receiveMultipart(flags: .dontWait),
              frames.count >= 2, frames[0].count >= 6
        else { return nil }
        let (code, value) = frames[0].withUnsafeBytes { buffer in
            (buffer.loadUnaligned(fromByteOffset: 0, as: UInt16.self),
             buffer.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        }
        return SocketEvent(kind: SocketEventKind(code: code), value: value, endpoint: frames[1].string)
    }

    /// Waits for an event of `kind`, skipping others, until `timeout` passes in all.
    public func waitFor(_ kind: SocketEventKind, timeout: Duration) throws(ZMQError) -> SocketEvent? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            guard let event = try next(timeout: clock.now.duration(to: deadline)) else { return nil }
            if event.kind == kind { return event }
        }
        return nil
    }
}
