import CZMQ

/// A libzmq context (`zmq_ctx_new`): the owner of I/O threads and the scope of `inproc://`
/// endpoints.
///
/// Thread rules: a context may be shared between threads; its sockets may not (see ``Socket``).
/// Every socket keeps its context alive, so the context is terminated (`zmq_ctx_term`) only after
/// the last socket created from it has closed.
public final class Context: @unchecked Sendable {
    // @unchecked Sendable: libzmq documents contexts as thread safe, and `handle` never changes
    // after init.
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` background I/O threads (`ZMQ_IO_THREADS`).
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_ctx_new")
        }
        self.handle = handle
        if ioThreads != 1 {
            try zmqCheck("set ZMQ_IO_THREADS") { zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) }
        }
    }

    /// The largest number of sockets this context allows at once (`ZMQ_MAX_SOCKETS`).
    public var maxSockets: Int {
        Int(zmq_ctx_get(handle, ZMQ_MAX_SOCKETS))
    }

    /// Makes every blocking call on this context's sockets fail with a context-terminated error
    /// (`zmq_ctx_shutdown`), so that socket-owning threads can leave their loops and close.
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    deinit {
        // Retries EINTR; blocks until every socket is closed, which the strong references from
        // sockets guarantee has already happened.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// The libzmq version this program runs against, e.g. `4.3.4`.
public var libzmqVersion: String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
}

/// Whether libzmq was built with a capability (`zmq_has`), e.g. `"curve"`.
public func libzmqHas(_ capability: String) -> Bool {
    zmq_has(capability) != 0
}
