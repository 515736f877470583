import TestSupport
import ConveyorProtocol
import ZeroMQ

/// The protocol tag's bytes, spelled out rather than taken from `ProtocolTag`, so that the tests
/// pin the wire format instead of echoing the implementation.
let cvy2: [UInt8] = [0x43, 0x56, 0x59, 0x32]

/// The packed frame of a command that carries groups: each field as a 4-byte big-endian length and
/// its bytes (PROTOCOL.md, "Packed groups"), written out here rather than taken from the implementation.
func packed(_ fields: [[UInt8]]) -> [UInt8] {
    fields.flatMap { field -> [UInt8] in
        let count = UInt32(field.count)
        return [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + field
    }
}

/// Builds ZeroMQ frames from byte arrays and parses them as a received message.
func parse(_ parts: [[UInt8]], fromRouter: Bool = false) throws(ProtocolError) -> Envelope {
    try Envelope(frames: parts.map { Message($0) }, fromRouter: fromRouter)
}

/// The error `parse` throws, or `nil` when the frames parse.
func parseError(_ parts: [[UInt8]], fromRouter: Bool = false) -> ProtocolError? {
    do {
        _ = try parse(parts, fromRouter: fromRouter)
        return nil
    } catch {
        return error
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The suites' seeded generator, so that generated cases are the same on every run.
typealias SeededGenerator = TestSupport.SplitMix64

/// The version-3 tag, spelled out: ASCII `CVY3`.
let cvy3: [UInt8] = [0x43, 0x56, 0x59, 0x33]

/// One tagged field (PROTOCOL.md §6.1), written out here rather than taken from the implementation:
/// tag u16, length u16, both big-endian, then the value.
func tlv(_ tag: UInt16, _ value: [UInt8]) -> [UInt8] {
    [UInt8(tag >> 8), UInt8(tag & 0xFF), UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
}

func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
