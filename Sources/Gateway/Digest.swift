internal import COpenSSL

/// SHA-256 through OpenSSL's libcrypto (as the built-in `sha256` task does; see
/// docs/ARCHITECTURE.md for why not swift-crypto).
enum Digest {
    /// The SHA-256 of `bytes` (`SHA256` of libcrypto).
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                _ = SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return out
    }
}
