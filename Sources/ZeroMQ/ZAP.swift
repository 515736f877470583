/// One ZAP request (ZeroMQ RFC 27, ZAP 1.0): libzmq asks the handler of its context whether a
/// peer that is completing its handshake may connect.
///
/// libzmq 4.3 asks for every CURVE (and PLAIN) handshake whenever a handler is bound, and for a
/// NULL handshake only when the socket has a ZAP domain (``SocketOption/zapDomain``).
public struct ZAPRequest: Sendable, Equatable {
    /// Echoed in the reply.
    public let requestID: [UInt8]
    /// The socket's ZAP domain (empty when it has none).
    public let domain: String
    /// The peer's address as libzmq saw it (an IP address for TCP, without the port).
    public let address: String
    /// The routing id option of the socket that accepted the connection (not the peer's).
    public let routingID: [UInt8]
    /// `NULL`, `PLAIN` or `CURVE`.
    public let mechanism: String
    /// The mechanism's credentials: for CURVE, the client's 32-byte public key.
    public let credentials: [[UInt8]]

    public init(requestID: [UInt8], domain: String, address: String, routingID: [UInt8], mechanism: String,
                credentials: [[UInt8]]) {
        self.requestID = requestID
        self.domain = domain
        self.address = address
        self.routingID = routingID
        self.mechanism = mechanism
        self.credentials = credentials
    }

    /// The client's CURVE public key (32 bytes), for a CURVE handshake.
    public var curveClientKey: [UInt8]? {
        mechanism == "CURVE" && credentials.count == 1 && credentials[0].count == 32 ? credentials[0] : nil
    }

    /// The request in `frames`, or `nil` when they are not a ZAP 1.0 request.
    init?(frames: [[UInt8]]) {
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else { return nil }
        self.init(requestID: frames[1], domain: String(decoding: frames[2], as: UTF8.self),
                  address: String(decoding: frames[3], as: UTF8.self), routingID: frames[4],
                  mechanism: String(decoding: frames[5], as: UTF8.self), credentials: Array(frames.dropFirst(6)))
    }
}

/// The answer to a ``ZAPRequest``.
public struct ZAPReply: Sendable, Equatable {
    /// ZAP status codes. libzmq 4.3 closes a connection refused with 400 after telling the client
    /// (which then sees `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH` and does not reconnect by itself); one
    /// refused with 300 is kept silent until the handshake interval passes, then closed, and the
    /// client reconnects.
    public enum Status: String, Sendable {
        case success = "200"
        case temporaryFailure = "300"
        case failure = "400"
        case internalError = "500"
    }

    public var status: Status
    /// A reason for the log; libzmq does not pass it to the client.
    public var text: String
    /// The peer's identity: libzmq attaches it to every message received on the connection as
    /// the `User-Id` property.
    public var userID: String
    /// Properties libzmq attaches to every message received on the connection, read with
    /// ``MessageMetadata/property(_:)``. Names are 1-255 bytes.
    public var properties: [(name: String, value: [UInt8])]

    public init(status: Status, text: String, userID: String = "", properties: [(name: String, value: [UInt8])] = []) {
        self.status = status
        self.text = text
        self.userID = userID
        self.properties = properties
    }

    public static func == (lhs: ZAPReply, rhs: ZAPReply) -> Bool {
        lhs.status == rhs.status && lhs.text == rhs.text && lhs.userID == rhs.userID
            && lhs.properties.map(\.name) == rhs.properties.map(\.name) && lhs.properties.map(\.value) == rhs.properties.map(\.value)
    }

    /// The properties in ZMTP's metadata encoding: per property a 1-byte name length, the name, a
    /// 4-byte big-endian value length, the value.
    var encodedProperties: [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in properties {
            let nameBytes = Array(name.utf8.prefix(255))
            bytes.append(UInt8(nameBytes.count))
            bytes.append(contentsOf: nameBytes)
            let count = UInt32(value.count)
            bytes.append(contentsOf: [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)])
            bytes.append(contentsOf: value)
        }
        return bytes
    }
}

/// The handler end of ZAP: a REP socket bound to `inproc://zeromq.zap.01` in a context, which
/// libzmq asks about every handshake on that context's sockets that needs authenticating.
///
/// Bind it before any socket of the context binds or connects, and keep it served: a handshake
/// waits for its answer. Only one handler may be bound per context (the bind fails with "Address
/// already in use" otherwise).
///
/// Thread rules: a socket; it belongs to the thread that created it.
public final class ZAPHandler {
    /// The endpoint ZAP 1.0 fixes.
    public static let endpoint = "inproc://zeromq.zap.01"
    /// Add it to a ``Poller`` to wait for requests.
    public let socket: Socket

    /// Binds the handler's REP socket in `context` (`zmq_bind inproc://zeromq.zap.01`).
    public init(_ context: Context) throws(ZMQError) {
        socket = try Socket(context, type: .rep)
        try socket.set(.linger, 0)
        try socket.bind(Self.endpoint)
    }

    /// Answers one waiting request with `decide`'s reply; returns `false` when none was waiting.
    /// A request that is not ZAP 1.0 is answered with status 500 (libzmq then refuses the
    /// handshake).
    @discardableResult
    public func answerNext(_ decide: (ZAPRequest) -> ZAPReply) throws(ZMQError) -> Bool {
        guard let frames = try socket.receiveMultipart(flags: .dontWait) else { return false }
        let raw = frames.map(\.bytes)
        let reply: ZAPReply
        let requestID: [UInt8]
        if let request = ZAPRequest(frames: raw) {
            requestID = request.requestID
            reply = decide(request)
        } else {
            requestID = raw.count > 1 ? raw[1] : []
            reply = ZAPReply(status: .internalError, text: "not a ZAP 1.0 request")
        }
        try socket.send(multipart: [Array("1.0".utf8), requestID, Array(reply.status.rawValue.utf8),
                                    Array(reply.text.utf8), Array(reply.userID.utf8), reply.encodedProperties])
        return true
    }
}
