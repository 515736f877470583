import CZMQ

/// A CURVE key pair (`zmq_curve_keypair`), each key 32 bytes.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: [UInt8]
    public let secretKey: [UInt8]

    public init(publicKey: [UInt8], secretKey: [UInt8]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The key pair of `secretKey` (32 bytes): its public key derived with `zmq_curve_public`.
    public init(secretKey: [UInt8]) throws(ZMQError) {
        guard secretKey.count == 32 else {
            throw ZMQError(code: EINVAL, operation: "CURVE secret key of \(secretKey.count) bytes (needs 32)")
        }
        let secretZ85 = try Z85.encode(secretKey)
        var publicText = [CChar](repeating: 0, count: 41)
        let secretText = Array(secretZ85.utf8).map { CChar(bitPattern: $0) } + [0]
        try zmqCheck("zmq_curve_public") { zmq_curve_public(&publicText, secretText) }
        let publicZ85 = String(decoding: publicText.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.init(publicKey: try Z85.decode(publicZ85), secretKey: secretKey)
    }

    /// Generates a fresh key pair. Throws when libzmq was built without CURVE support.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        try zmqCheck("zmq_curve_keypair") { zmq_curve_keypair(&publicText, &secretText) }
        let publicZ85 = String(decoding: publicText.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let secretZ85 = String(decoding: secretText.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CurveKeyPair(publicKey: try Z85.decode(publicZ85), secretKey: try Z85.decode(secretZ85))
    }
}

/// Z85, ZeroMQ's printable encoding of binary keys (RFC 32, `zmq_z85_encode` / `zmq_z85_decode`).
public enum Z85 {
    /// Encodes `bytes`, whose count must be a multiple of 4.
    public static func encode(_ bytes: [UInt8]) throws(ZMQError) -> String {
        guard bytes.count % 4 == 0 else {
            throw ZMQError(code: EINVAL, operation: "Z85 encode \(bytes.count) bytes (needs a multiple of 4)")
        }
        var text = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else {
            throw ZMQError(code: EINVAL, operation: "Z85 encode")
        }
        return String(decoding: text.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes `text`, whose length must be a multiple of 5, from the Z85 alphabet.
    public static func decode(_ text: String) throws(ZMQError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        // zmq_z85_decode refuses empty text, yet it is what `encode([])` returns.
        if utf8.isEmpty { return [] }
        guard utf8.count % 5 == 0 else {
            throw ZMQError(code: EINVAL, operation: "Z85 decode \(utf8.count) characters (needs a multiple of 5)")
        }
        var output = [UInt8](repeating: 0, count: utf8.count * 4 / 5)
        let cString = utf8.map { CChar(bitPattern: $0) } + [0]
        guard zmq_z85_decode(&output, cString) != nil else {
            throw ZMQError(code: EINVAL, operation: "Z85 decode: not Z85 text")
        }
        return output
    }
}
