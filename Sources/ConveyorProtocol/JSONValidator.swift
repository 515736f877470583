/// Checks that bytes are one complete JSON value (RFC 8259) without building it.
///
/// Conveyor forwards task arguments and results as bytes; a consumer checks them with this before
/// handing them to a raw-JSON handler, so that malformed JSON gets a clear error result naming the
/// byte offset, without the cost of decoding.
public enum JSONValidator {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// Throws a ``Failure`` naming the first offending byte, or returns when `bytes` is valid.
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 512) throws(Failure) {
        var scanner = Scanner(bytes: bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        try scanner.value(depth: 0)
        scanner.skipWhitespace()
        if scanner.position != bytes.count {
            throw Failure(offset: scanner.position, reason: "unexpected data after the value")
        }
    }

    public static func validate(_ bytes: [UInt8]) throws(Failure) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(Failure) in try validate(buffer) }
        }.get()
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        (try? validate(bytes)) != nil
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        var position = 0

        init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        func fail(_ reason: String) -> Failure { Failure(offset: position, reason: reason) }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                position += 1
            }
        }

        mutating func value(depth: Int) throws(Failure) {
            guard let byte = current else { throw fail("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw fail("unexpected character '\(Character(UnicodeScalar(byte)))'")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw fail("unexpected end of input") }
            for i in 0..<count where bytes[position + i] != word.utf8Start[i] {
                throw fail("invalid literal")
            }
            position += count
        }

        mutating func object(depth: Int) throws(Failure) {
            guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth)") }
            position += 1
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                try string()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipWhitespace()
                try value(depth: depth)
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return
                case nil: throw fail("unexpected end of input")
                default: throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) {
            guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth)") }
            position += 1
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return }
            while true {
                skipWhitespace()
                try value(depth: depth)
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return
                case nil: throw fail("unexpected end of input")
                default: throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func string() throws(Failure) {
            position += 1
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return
                case UInt8(ascii: "\\"):
                    position += 1
                    guard let escaped = current else { throw fail("unexpected end of input") }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        position += 1
                    case UInt8(ascii: "u"):
                        position += 1
                        for _ in 0..<4 {
                            guard let hex = current, hex.isHexDigit else { throw fail("invalid \\u escape") }
                            position += 1
                        }
                    default:
                        throw fail("invalid escape")
                    }
                case 0..<0x20:
                    throw fail("control character in string")
                case 0x80...:
                    try utf8Sequence(lead: byte)
                default:
                    position += 1
                }
            }
            throw fail("unterminated string")
        }

        /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        mutating func utf8Sequence(lead: UInt8) throws(Failure) {
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: throw fail("invalid UTF-8")
            }
            guard position + length <= bytes.count else { throw fail("invalid UTF-8") }
            for i in 1..<length {
                let byte = bytes[position + i]
                let (min, max) = i == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard byte >= min && byte <= max else { throw fail("invalid UTF-8") }
            }
            position += length
        }

        mutating func number() throws(Failure) {
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first.isDigit else { throw fail("expected a digit") }
            position += 1
            if first != UInt8(ascii: "0") {
                while let byte = current, byte.isDigit { position += 1 }
            }
            if current == UInt8(ascii: ".") {
                position += 1
                guard let byte = current, byte.isDigit else { throw fail("expected a digit after '.'") }
                while let byte = current, byte.isDigit { position += 1 }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard let byte = current, byte.isDigit else { throw fail("expected a digit in exponent") }
                while let byte = current, byte.isDigit { position += 1 }
            }
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
