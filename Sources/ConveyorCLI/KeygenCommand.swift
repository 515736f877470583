import ConveyorSystem
import ArgumentParser
import Foundation
import ZeroMQ

/// `conveyor keygen`: a CURVE key pair for a broker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair for a broker (encrypted connections, the broker authenticated).",
        discussion: """
            Prints 'public-key Z85' and 'secret-key Z85'. Keep the output in a file only the broker's \
            user can read and start the broker with --curve-secret-file FILE; give the public key to \
            consumers and producers with --curve-server-key KEY.
            """)

    func run() throws {
        let keys = try CurveKeyPair.generate()
        printLine("public-key \(try Z85.encode(keys.publicKey))")
        printLine("secret-key \(try Z85.encode(keys.secretKey))")
    }
}

/// CURVE keys given on the command line.
enum CurveKeys {
    /// A 32-byte key from its 40 Z85 characters.
    static func key(z85 text: String, option: String) throws -> [UInt8] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count == 40, let key = try? Z85.decode(trimmed), key.count == 32 else {
            throw ValidationError("\(option) must be a CURVE key: 40 characters of Z85 (see conveyor keygen)")
        }
        return key
    }

    /// The secret key in a file written by `conveyor keygen` (its `secret-key` line), or holding
    /// just the key.
    static func secretKey(file path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read --curve-secret-file '\(path)'")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        let secret = lines.first { $0.hasPrefix("secret-key ") }.map { String($0.dropFirst("secret-key ".count)) }
            ?? (lines.count == 1 ? String(lines[0]) : "")
        return try key(z85: secret, option: "the secret key in --curve-secret-file")
    }
}
