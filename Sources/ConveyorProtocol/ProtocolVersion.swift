public import ZeroMQ

/// The protocol versions this build speaks. A broker serves peers of both (docs/PROTOCOL.md §13):
/// it reads the version from each message's tag and answers in the same version.
public enum ProtocolVersion: UInt8, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// `CVY2`: packed groups, the fixed 16-byte options field and 8-byte dispatch meta.
    case v2 = 2
    /// `CVY3`: tagged options and dispatch meta, `HELLO`, and the rules for unknown words.
    case v3 = 3

    /// The version this build speaks by default.
    public static let current: ProtocolVersion = .v3
    /// Versions this build reads and writes, newest first.
    public static let supported: [ProtocolVersion] = [.v3, .v2]

    /// The four bytes of frame 0: `CVY` and the version digit.
    public var tag: [UInt8] {
        switch self {
        case .v2: Self.tag2
        case .v3: Self.tag3
        }
    }
    private static let tag2: [UInt8] = [0x43, 0x56, 0x59, 0x32]
    private static let tag3: [UInt8] = [0x43, 0x56, 0x59, 0x33]
    public var tagText: String { "CVY\(rawValue)" }
    public var description: String { tagText }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// The supported version whose tag is exactly these bytes, or `nil`.
    public init?(tag bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 4, bytes[0] == 0x43, bytes[1] == 0x56, bytes[2] == 0x59 else { return nil }
        switch bytes[3] {
        case 0x32: self = .v2
        case 0x33: self = .v3
        default: return nil
        }
    }

    /// The version to answer a received message in, whether or not it parses: the version of its
    /// tag when this build speaks it, else ``current`` (an `ERROR` to a peer of another version is
    /// tagged with the newest version, §9). With `fromRouter`, frame 0 is the routing id.
    public static func reply(to message: Multipart, fromRouter: Bool) -> ProtocolVersion {
        let index = fromRouter ? 1 : 0
        guard index < message.count else { return current }
        return message[index].withUnsafeBytes { ProtocolVersion(tag: $0) } ?? current
    }
}

/// The protocol tag that opens every Conveyor message: `CVY` and the protocol version.
public enum ProtocolTag {
    /// The version this build speaks by default (``ProtocolVersion/current``).
    public static let currentText = ProtocolVersion.current.tagText
    public static let current: [UInt8] = ProtocolVersion.current.tag
    /// The tags of every version this build speaks, newest first: `CVY3`, `CVY2`.
    public static let supported: [[UInt8]] = ProtocolVersion.supported.map(\.tag)
    public static let supportedText: [String] = ProtocolVersion.supported.map(\.tagText)
    /// Every Conveyor tag starts with these bytes, whatever its version.
    public static let family: [UInt8] = Array("CVY".utf8)
}

extension Envelope {
    /// For a producer or consumer that speaks `spoken`: whether this message says the broker does
    /// not speak it, i.e. an `ERROR` tagged with an older version (a version-2 broker answers a
    /// `CVY3` message with `ERROR` tagged `CVY2`, docs/PROTOCOL.md §13.3). A client then either
    /// switches to ``version`` and sends its messages again, or fails its requests naming both.
    public func refusesVersion(_ spoken: ProtocolVersion) -> Bool {
        command == .error && version < spoken
    }
}
