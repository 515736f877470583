import Foundation

/// A value in a config file.
public enum ConfigValue: Sendable, Equatable {
    case string(String)
    /// As written, less TOML's `_` digit separators.
    case integer(String)
    /// As written, less `_`.
    case float(String)
    case boolean(Bool)
    /// Of scalars only.
    case array([ConfigValue])

    /// The text an option gets for a scalar: a string's own text, a number as written, `true`/`false`.
    public var argumentText: String? {
        switch self {
        case .string(let text), .integer(let text), .float(let text): text
        case .boolean(let value): value ? "true" : "false"
        case .array: nil
        }
    }

    /// How it reads in the file, for messages: strings quoted, arrays bracketed.
    public var tomlText: String {
        switch self {
        case .string(let text): "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .integer(let text), .float(let text): text
        case .boolean(let value): value ? "true" : "false"
        case .array(let values): "[" + values.map(\.tomlText).joined(separator: ", ") + "]"
        }
    }
}

/// Why a config file, an environment variable or a value from either cannot be used: said with
/// its source (file and line, or variable), for exit status 64.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
