import Testing
import ZeroMQ

extension WrapperTests {
    @Suite("Messages")
    struct MessageTests {
        static let tenMegabytes = 10 * 1024 * 1024

        @Test func tenMegabyteMessageWrittenInPlaceArrivesByteIdentical() throws {
            let expected = patternBytes(count: Self.tenMegabytes)
            let message = Message(count: expected.count) { buffer in
                buffer.copyBytes(from: expected)
            }
            #expect(message.count == expected.count)

            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)
            try push.send(message)

            let received = try #require(try receiveMessage(pull))
            #expect(received.count == 1)
            #expect(received[0].count == expected.count)
            #expect(received[0].contentEquals(expected))
        }

        @Test func tenMegabyteMessageFromAnOwnedBufferArrivesByteIdentical() throws {
            let expected = patternBytes(count: Self.tenMegabytes, seed: 12345)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: expected.count, alignment: 16)
            buffer.copyBytes(from: expected)
            let message = Message(takingOwnershipOf: buffer)
            #expect(message.count == expected.count)

            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)
            try push.send(message)

            let received = try #require(try receiveMessage(pull))
            #expect(received.count == 1)
            #expect(received[0].count == expected.count)
            #expect(received[0].contentEquals(expected))
        }

        @Test func tenMegabyteByteArrayArrivesByteIdenticalOverInproc() throws {
            let expected = patternBytes(count: Self.tenMegabytes, seed: 777)
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://big")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://big")
            try push.send(expected)
            #expect(try receiveMessage(pull)?.first?.bytes == expected)
        }

        @Test func sendingAMessageLeavesItIntactForAnotherSend() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://resend")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://resend")

            let small = Message("small")
            let large = Message(patternBytes(count: 1000))
            try push.send(small)
            try push.send(small)
            try push.send(large)
            try push.send(large)
            #expect(small.string == "small")
            #expect(large.contentEquals(patternBytes(count: 1000)))
            #expect(try receiveStrings(pull) == ["small"])
            #expect(try receiveStrings(pull) == ["small"])
            #expect(try receiveMessage(pull)?.first?.bytes == patternBytes(count: 1000))
            #expect(try receiveMessage(pull)?.first?.bytes == patternBytes(count: 1000))
        }

        @Test func messagesExposeTheirBytes() {
            #expect(Message().isEmpty)
            #expect(Message().bytes == [])
            #expect(Message("héllo").bytes == Array("héllo".utf8))
            #expect(Message("héllo").string == "héllo")
            #expect(Message([1, 2, 3]).count == 3)
            #expect(Message([1, 2, 3]).contentEquals([1, 2, 3]))
            #expect(!Message([1, 2, 3]).contentEquals([1, 2]))
            let bytes: [UInt8] = [9, 8, 7]
            let copied = bytes.withUnsafeBytes { Message($0) }
            #expect(copied.bytes == bytes)
            let empty = Message(takingOwnershipOf: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            #expect(empty.isEmpty)
            let emptyAllocation = Message(takingOwnershipOf: .allocate(byteCount: 0, alignment: 1))
            #expect(emptyAllocation.isEmpty)
        }

        @Test func messageDescriptionShowsSizeAndPrintableBytes() {
            #expect(Message("abc").description == "Message(3 bytes: abc)")
            #expect(Message([0x00, 0x41]).description == "Message(2 bytes: \\x0A)")
            #expect(Message(String(repeating: "x", count: 40)).description.hasSuffix("…)"))
        }

        @Test func receivingIntoBytesCopiesTheFrame() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://bytes")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://bytes")
            try push.send([0, 255, 0])
            #expect(try pull.receiveBytes() == [0, 255, 0])
        }
    }
}
