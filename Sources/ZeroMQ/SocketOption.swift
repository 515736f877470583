import CZMQ

/// A socket option (`zmq_setsockopt` / `zmq_getsockopt`) whose value has type `Value`.
///
/// ```swift
/// try socket.set(.linger, 0)
/// try socket.set(.routingID, Array("producer-1".utf8))
/// let port = try socket.get(.lastEndpoint)
/// ```
public struct SocketOption<Value>: Sendable {
    let code: Int32
    let name: String
    init(_ code: Int32, _ name: String) {
        self.code = code
        self.name = name
    }
}

extension SocketOption where Value == Int32 {
    /// Milliseconds unsent messages are kept after close; 0 drops them (`ZMQ_LINGER`).
    public static var linger: Self { .init(ZMQ_LINGER, "ZMQ_LINGER") }
    /// Outgoing messages queued per peer before sends block or drop (`ZMQ_SNDHWM`).
    public static var sendHighWaterMark: Self { .init(ZMQ_SNDHWM, "ZMQ_SNDHWM") }
    /// Incoming messages queued per peer (`ZMQ_RCVHWM`).
    public static var receiveHighWaterMark: Self { .init(ZMQ_RCVHWM, "ZMQ_RCVHWM") }
    /// Milliseconds a send waits before reporting "would block"; -1 waits forever (`ZMQ_SNDTIMEO`).
    public static var sendTimeout: Self { .init(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO") }
    /// Milliseconds a receive waits before returning nothing; -1 waits forever (`ZMQ_RCVTIMEO`).
    public static var receiveTimeout: Self { .init(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO") }
    /// Milliseconds between ZMTP PINGs; 0 disables them (`ZMQ_HEARTBEAT_IVL`).
    public static var heartbeatInterval: Self { .init(ZMQ_HEARTBEAT_IVL, "ZMQ_HEARTBEAT_IVL") }
    /// Milliseconds without traffic after a PING before the connection is closed (`ZMQ_HEARTBEAT_TIMEOUT`).
    public static var heartbeatTimeout: Self { .init(ZMQ_HEARTBEAT_TIMEOUT, "ZMQ_HEARTBEAT_TIMEOUT") }
    /// Milliseconds the remote peer should wait for traffic before closing (`ZMQ_HEARTBEAT_TTL`).
    public static var heartbeatTTL: Self { .init(ZMQ_HEARTBEAT_TTL, "ZMQ_HEARTBEAT_TTL") }
    /// TCP keepalive: -1 system default, 0 off, 1 on (`ZMQ_TCP_KEEPALIVE`).
    public static var tcpKeepalive: Self { .init(ZMQ_TCP_KEEPALIVE, "ZMQ_TCP_KEEPALIVE") }
    /// Seconds idle before TCP keepalive probes start (`ZMQ_TCP_KEEPALIVE_IDLE`).
    public static var tcpKeepaliveIdle: Self { .init(ZMQ_TCP_KEEPALIVE_IDLE, "ZMQ_TCP_KEEPALIVE_IDLE") }
    /// Milliseconds between reconnect attempts (`ZMQ_RECONNECT_IVL`).
    public static var reconnectInterval: Self { .init(ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL") }
    /// Upper bound for the doubling reconnect interval; 0 keeps it fixed (`ZMQ_RECONNECT_IVL_MAX`).
    public static var reconnectIntervalMax: Self { .init(ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX") }
    /// Milliseconds allowed for the ZMTP handshake (`ZMQ_HANDSHAKE_IVL`).
    public static var handshakeInterval: Self { .init(ZMQ_HANDSHAKE_IVL, "ZMQ_HANDSHAKE_IVL") }
    /// The events the socket is ready for (`ZMQ_EVENTS`, read only).
    public static var events: Self { .init(ZMQ_EVENTS, "ZMQ_EVENTS") }
}

extension SocketOption where Value == Bool {
    /// A ROUTER reports unroutable messages as host-unreachable instead of dropping them
    /// (`ZMQ_ROUTER_MANDATORY`).
    public static var routerMandatory: Self { .init(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY") }
    /// A ROUTER hands a routing id over to a new connection that claims it (`ZMQ_ROUTER_HANDOVER`).
    public static var routerHandover: Self { .init(ZMQ_ROUTER_HANDOVER, "ZMQ_ROUTER_HANDOVER") }
    /// Queue messages only to completed connections (`ZMQ_IMMEDIATE`).
    public static var immediate: Self { .init(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE") }
    /// This socket is a CURVE server (`ZMQ_CURVE_SERVER`).
    public static var curveServer: Self { .init(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER") }
    /// Whether another frame of the current message follows (`ZMQ_RCVMORE`, read only).
    public static var receiveMore: Self { .init(ZMQ_RCVMORE, "ZMQ_RCVMORE") }
}

extension SocketOption where Value == Int64 {
    /// Largest inbound message in bytes; a peer that sends more is disconnected; -1 means no
    /// limit (`ZMQ_MAXMSGSIZE`).
    public static var maxMessageSize: Self { .init(ZMQ_MAXMSGSIZE, "ZMQ_MAXMSGSIZE") }
}

extension SocketOption where Value == [UInt8] {
    /// The identity a ROUTER peer sees for this socket (`ZMQ_ROUTING_ID`), 1–255 bytes.
    public static var routingID: Self { .init(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID") }
    /// This socket's CURVE public key, 32 bytes (`ZMQ_CURVE_PUBLICKEY`).
    public static var curvePublicKey: Self { .init(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY") }
    /// This socket's CURVE secret key, 32 bytes (`ZMQ_CURVE_SECRETKEY`).
    public static var curveSecretKey: Self { .init(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY") }
    /// The server's CURVE public key a client expects, 32 bytes (`ZMQ_CURVE_SERVERKEY`).
    public static var curveServerKey: Self { .init(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY") }
    /// A SUB socket's topic prefix to receive (`ZMQ_SUBSCRIBE`); empty receives everything.
    public static var subscribe: Self { .init(ZMQ_SUBSCRIBE, "ZMQ_SUBSCRIBE") }
    /// Removes a topic prefix (`ZMQ_UNSUBSCRIBE`).
    public static var unsubscribe: Self { .init(ZMQ_UNSUBSCRIBE, "ZMQ_UNSUBSCRIBE") }
}

extension SocketOption where Value == String {
    /// The ZAP authentication domain (`ZMQ_ZAP_DOMAIN`).
    public static var zapDomain: Self { .init(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN") }
    /// The endpoint last bound or connected (`ZMQ_LAST_ENDPOINT`, read only).
    public static var lastEndpoint: Self { .init(ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT") }
}

extension Socket {
    private func setRaw(_ code: Int32, _ name: String, _ value: UnsafeRawBufferPointer) throws(ZMQError) {
        try zmqCheck("set \(name)") { zmq_setsockopt(handle, code, value.baseAddress, value.count) }
    }

    /// Sets an integer option.
    public func set(_ option: SocketOption<Int32>, _ value: Int32) throws(ZMQError) {
        var value = value
        try withUnsafeBytes(of: &value) { buffer throws(ZMQError) in try setRaw(option.code, option.name, buffer) }
    }

    /// Sets a flag option (stored as an `int` 0 or 1).
    public func set(_ option: SocketOption<Bool>, _ value: Bool) throws(ZMQError) {
        var value: Int32 = value ? 1 : 0
        try withUnsafeBytes(of: &value) { buffer throws(ZMQError) in try setRaw(option.code, option.name, buffer) }
    }

    /// Sets a 64-bit option.
    public func set(_ option: SocketOption<Int64>, _ value: Int64) throws(ZMQError) {
        var value = value
        try withUnsafeBytes(of: &value) { buffer throws(ZMQError) in try setRaw(option.code, option.name, buffer) }
    }

    /// Sets a binary option.
    public func set(_ option: SocketOption<[UInt8]>, _ value: [UInt8]) throws(ZMQError) {
        try value.withUnsafeBytes { buffer in
            Result { () throws(ZMQError) in try setRaw(option.code, option.name, buffer) }
        }.get()
    }

    /// Sets a text option.
    public func set(_ option: SocketOption<String>, _ value: String) throws(ZMQError) {
        try set(SocketOption<[UInt8]>(option.code, option.name), Array(value.utf8))
    }

    /// Reads an integer option.
    public func get(_ option: SocketOption<Int32>) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try zmqCheck("get \(option.name)") { zmq_getsockopt(handle, option.code, &value, &size) }
        return value
    }

    /// Reads a flag option.
    public func get(_ option: SocketOption<Bool>) throws(ZMQError) -> Bool {
        try get(SocketOption<Int32>(option.code, option.name)) != 0
    }

    /// Reads a 64-bit option.
    public func get(_ option: SocketOption<Int64>) throws(ZMQError) -> Int64 {
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        try zmqCheck("get \(option.name)") { zmq_getsockopt(handle, option.code, &value, &size) }
        return value
    }

    /// Reads a binary option (up to 256 bytes).
    public func get(_ option: SocketOption<[UInt8]>) throws(ZMQError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 256)
        var size = buffer.count
        try zmqCheck("get \(option.name)") { zmq_getsockopt(handle, option.code, &buffer, &size) }
        return Array(buffer.prefix(size))
    }

    /// Reads a text option; the trailing NUL libzmq includes is dropped.
    public func get(_ option: SocketOption<String>) throws(ZMQError) -> String {
        var bytes = try get(SocketOption<[UInt8]>(option.code, option.name))
        while bytes.last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
