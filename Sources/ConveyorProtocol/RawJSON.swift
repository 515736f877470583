/// A task's JSON text, untouched.
public struct RawJSON: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public var description: String { text }
}
