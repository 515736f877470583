internal import COpenSSL
import Foundation

/// Signs webhook deliveries as the Standard Webhooks specification says
/// (https://www.standardwebhooks.com): `webhook-signature: v1,` + base64 of HMAC-SHA256 over
/// `webhook-id.webhook-timestamp.body`, with the secret's bytes as the key. The secret is written
/// `whsec_` + base64 (what the spec's libraries take); `conveyor gateway --webhook-secret-file`
/// reads it.
public struct WebhookSigner: Sendable {
    private let key: [UInt8]

    /// A secret that is not `whsec_` + base64 of 24 to 64 bytes, with what is wrong.
    public struct BadSecret: Error, CustomStringConvertible {
        public let description: String
    }

    /// `secret` as the spec writes it: `whsec_` + base64 (whitespace around it is ignored).
    public init(secret: String) throws(BadSecret) {
        let text = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("whsec_") else {
            throw BadSecret(description: "a webhook secret starts with whsec_ and then base64 (make one with: echo whsec_$(head -c 32 /dev/urandom | base64))")
        }
        guard let bytes = Data(base64Encoded: String(text.dropFirst(6))) else {
            throw BadSecret(description: "the webhook secret after whsec_ is not base64")
        }
        guard (24...64).contains(bytes.count) else {
            throw BadSecret(description: "the webhook secret is \(bytes.count) bytes; use 24 to 64 (32 is usual)")
        }
        key = Array(bytes)
    }

    /// The `webhook-signature` header value for one delivery attempt.
    public func signature(id: String, timestamp: Int, body: [UInt8]) -> String {
        var content = Array("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        var mac = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { key in
            content.withUnsafeBufferPointer { content in
                mac.withUnsafeMutableBufferPointer { out in
                    _ = HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), content.baseAddress, content.count,
                             out.baseAddress, &length)
                }
            }
        }
        return "v1," + Data(mac.prefix(Int(length))).base64EncodedString()
    }
}
