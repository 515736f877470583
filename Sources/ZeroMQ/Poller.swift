import CZMQ

/// The events a poller waits for, or found (`ZMQ_POLLIN`, `ZMQ_POLLOUT`, `ZMQ_POLLERR`).
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
    public static let error = PollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits on several sockets and file descriptors at once (`zmq_poll`).
///
/// Thread rules: like the sockets it holds, a poller belongs to the thread that owns them.
public struct Poller {
    private var items: [zmq_pollitem_t] = []
    private var sockets: [Socket?] = []

    public init() {}

    /// Adds `socket`; returns the index to read its events with ``events(at:)``.
    @discardableResult
    public mutating func add(_ socket: Socket, for events: PollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        sockets.append(socket)
        return items.count - 1
    }

    /// Adds a socket monitor: readable when it has an event to read with ``SocketMonitor/next(timeout:)``.
    @discardableResult
    public mutating func add(_ monitor: SocketMonitor) -> Int {
        add(monitor.pair)
    }

    /// Adds a plain file descriptor (a pipe or eventfd used to wake the polling thread).
    @discardableResult
    public mutating func add(fileDescriptor: Int32, for events: PollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fileDescriptor, events: events.rawValue, revents: 0))
        sockets.append(nil)
        return items.count - 1
    }

    /// Waits until at least one item is ready or `timeout` passes (`nil` waits forever; `.zero`
    /// only checks).
    /// - Returns: how many items are ready; 0 when the timeout passed.
    @discardableResult
    public mutating func poll(timeout: Duration?) throws(ZMQError) -> Int {
        let milliseconds: Int
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            milliseconds = max(0, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        } else {
            milliseconds = -1
        }
        let count = Int32(items.count)
        while true {
            let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, milliseconds) }
            if rc >= 0 { return Int(rc) }
            let code = zmq_errno()
            // A signal interrupted the wait: report "nothing ready" so the caller's loop can look at
            // its flags (shutdown requests arrive this way) and poll again.
            if code == EINTR { return 0 }
            throw ZMQError(code: code, operation: "zmq_poll")
        }
    }

    /// The events found for the item at `index` by the last ``poll(timeout:)``.
    public func events(at index: Int) -> PollEvents {
        PollEvents(rawValue: items[index].revents)
    }

    /// Whether the item at `index` was readable at the last poll.
    public func isReadable(_ index: Int) -> Bool {
        events(at: index).contains(.readable)
    }
}
