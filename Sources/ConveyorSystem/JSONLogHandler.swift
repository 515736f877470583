import Foundation
public import Logging

/// A swift-log handler that writes one JSON object per line to standard error, for log
/// collectors (`--log-format json`): `ts` (ISO 8601, UTC, milliseconds), `level`, `msg`, `label`,
/// `source`, then every metadata key as it is (`task.id`, `task.name`, `error`, …), values as
/// strings (nested metadata as JSON arrays and objects). Keys are sorted, so lines compare.
/// Each line goes out in one `write(2)`, so lines of different threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata { fields[key] = Self.text(value) }
        for (key, value) in event.metadata ?? [:] { fields[key] = Self.text(value) }
        var line = "{"
        line += "\"ts\":" + Self.quoted(Self.timestamp())
        line += ",\"level\":" + Self.quoted(event.level.rawValue)
        line += ",\"msg\":" + Self.quoted("\(event.message)")
        line += ",\"label\":" + Self.quoted(label)
        line += ",\"source\":" + Self.quoted(event.source)
        for key in fields.keys.sorted() where !["ts", "level", "msg", "label", "source"].contains(key) {
            line += "," + Self.quoted(key) + ":" + Self.quoted(fields[key]!)
        }
        line += "}\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    private static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): "[" + values.map { quoted(text($0)) }.joined(separator: ",") + "]"
        case .dictionary(let values): "{" + values.keys.sorted().map { quoted($0) + ":" + quoted(text(values[$0]!)) }.joined(separator: ",") + "}"
        }
    }

    private static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = time_t(spec.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(spec.tv_nsec / 1_000_000))
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20: out += String(format: "\\u%04x", s.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
