public import ArgumentParser
import ConveyorSystem
import Foundation
public import Logging
public import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

// Command-line pieces shared by the stock `conveyor` CLI and apps' own workers.

/// `--log-level`, shared by every command.
public struct LoggingOptions: ParsableArguments {
    public init() {}

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Option(name: .long, help: "Log lines as text, or json: one JSON object per line (ts, level, msg, label, source, then the metadata: task.id, task.name, error, …).")
    public var logFormat: String = "text"

    public func bootstrap(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        let json = logFormat.lowercased() == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }

    public func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat.lowercased()) else {
            throw ValidationError("--log-format must be text or json, not '\(logFormat)'")
        }
    }
}

/// Endpoints as the options take them.
public enum Endpoints {
    /// `tcp://HOST:PORT` (PORT a number, or `*` where the option binds), `ipc://PATH` or
    /// `inproc://NAME`; anything else is refused with an example (exit 64).
    public static func validate(_ endpoint: String, option: String, example: String, binds: Bool = false) throws {
        func refuse() -> ValidationError {
            ValidationError("\(option) must look like tcp://HOST:PORT (for example \(example)), not '\(endpoint)'")
        }
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") {
            guard endpoint.split(separator: "/", omittingEmptySubsequences: false).count > 2, !endpoint.hasSuffix("//") else { throw refuse() }
            return
        }
        guard endpoint.hasPrefix("tcp://") else { throw refuse() }
        let rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":"), colon != rest.startIndex else { throw refuse() }
        let port = rest[rest.index(after: colon)...]
        if binds && port == "*" { return }
        guard let number = Int(port), (1...65_535).contains(number) else { throw refuse() }
    }
}

/// CURVE keys given on the command line.
public enum CurveKeys {
    /// A 32-byte key from its 40 Z85 characters.
    public static func key(z85 text: String, option: String) throws -> [UInt8] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count == 40, let key = try? Z85.decode(trimmed), key.count == 32 else {
            throw ValidationError("\(option) must be a CURVE key: 40 characters of Z85 (see conveyor keygen)")
        }
        return key
    }

    /// The secret key in a file written by `conveyor keygen` (its `secret-key` line), or holding
    /// just the key.
    public static func secretKey(file path: String, option: String = "--curve-secret-file") throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(option) '\(path)'")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        let secret = lines.first { $0.hasPrefix("secret-key ") }.map { String($0.dropFirst("secret-key ".count)) }
            ?? (lines.count == 1 ? String(lines[0]) : "")
        return try key(z85: secret, option: "the secret key in \(option)")
    }

    /// The key pair of the secret key in `path` (its public key derived from the secret).
    public static func keyPair(file path: String, option: String = "--curve-secret-file") throws -> CurveKeyPair {
        try CurveKeyPair(secretKey: try secretKey(file: path, option: option))
    }

    /// A warning when others than the file's owner may read `path` (mode bits 0o077), else `nil`.
    public static func exposure(of path: String, option: String = "--curve-secret-file") -> String? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & 0o077 != 0 else { return nil }
        let mode = String(status.st_mode & 0o777, radix: 8)
        return "\(option) \(path) is readable by others than its owner (mode \(mode)): anyone who reads it can pose as its owner; chmod 600 \(path)"
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes a line to standard output at once.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
