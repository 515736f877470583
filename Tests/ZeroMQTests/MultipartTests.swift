import Testing
import ZeroMQ

extension WrapperTests {
    /// `Multipart`, `Frame` and `Socket.receiveMultipart(into:flags:)`: whole messages received
    /// into one reused buffer.
    @Suite("Multipart receive")
    struct MultipartTests {
        /// A connected PUSH/PULL pair over inproc.
        private static func pair(_ context: Context, _ name: String) throws -> (push: Socket, pull: Socket) {
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://\(name)")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://\(name)")
            return (push, pull)
        }

        /// Waits up to `patience` for `socket` to become readable, then receives one whole
        /// message into `message`. Returns whether one arrived.
        private static func receive(_ socket: Socket, into message: inout Multipart) throws -> Bool {
            var poller = Poller()
            poller.add(socket)
            guard try poller.poll(timeout: patience) > 0 else { return false }
            return try socket.receiveMultipart(into: &message, flags: .dontWait)
        }

        private static func strings(_ message: Multipart) -> [String] { message.map(\.string) }

        @Test func multipartRoundTripOverTCP() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)

            let frames: [[UInt8]] = [Array("CVY1".utf8), [0x01], Array("task-id".utf8), [0, 255, 128, 7]]
            try push.send(multipart: frames)
            var message = Multipart()
            #expect(try Self.receive(pull, into: &message))
            #expect(message.count == 4)
            #expect(message.map(\.bytes) == frames)
            #expect(message.byteCount == frames.reduce(0) { $0 + $1.count })
            #expect(message[0].string == "CVY1")
            #expect(message[2].contentEquals(Array("task-id".utf8)))
            #expect(message[3].count == 4)
        }

        @Test func routerSeesTheRoutingIDFrameFirst() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            try router.bind("inproc://multipart-router")
            let dealer = try makeSocket(context, .dealer)
            try dealer.set(.routingID, Array("dealer-1".utf8))
            try dealer.connect("inproc://multipart-router")

            try dealer.send(multipart: [Array("hello".utf8), Array("world".utf8)])
            var message = Multipart()
            #expect(try Self.receive(router, into: &message))
            #expect(Self.strings(message) == ["dealer-1", "hello", "world"])
        }

        @Test func emptyFramesKeepTheirPlaces() throws {
            let context = try Context()
            let (push, pull) = try Self.pair(context, "multipart-empty")
            var message = Multipart()

            try push.send(multipart: ["", "a", "", "", "bc", ""].map { Array($0.utf8) })
            #expect(try Self.receive(pull, into: &message))
            #expect(Self.strings(message) == ["", "a", "", "", "bc", ""])
            #expect(message.map(\.count) == [0, 1, 0, 0, 2, 0])
            #expect(message.map(\.isEmpty) == [true, false, true, true, false, true])
            #expect(message.byteCount == 3)

            // A message of one empty frame, and one of only empty frames.
            try push.send([UInt8]())
            #expect(try Self.receive(pull, into: &message))
            #expect(message.count == 1)
            #expect(message[0].isEmpty)
            #expect(message[0].bytes == [])
            #expect(message[0].string == "")
            #expect(message.byteCount == 0)

            try push.send(multipart: [[], [], []])
            #expect(try Self.receive(pull, into: &message))
            #expect(message.count == 3)
            #expect(message.allSatisfy { $0.isEmpty })
        }

        @Test func aThousandFramesArriveInOrder() throws {
            let context = try Context()
            let (push, pull) = try Self.pair(context, "multipart-many")
            // Some frames empty, lengths varied, so that every frame boundary is checked.
            let frames: [[UInt8]] = (0..<1_000).map { i in
                i % 7 == 0 ? [] : Array("frame-\(i)-".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: i % 13)
            }
            try push.send(multipart: frames)
            var message = Multipart()
            #expect(try Self.receive(pull, into: &message))
            #expect(message.count == 1_000)
            #expect(message.map(\.bytes) == frames)
            for (index, frame) in frames.enumerated() {
                #expect(message[index].contentEquals(frame), "frame \(index)")
            }
            #expect(message.byteCount == frames.reduce(0) { $0 + $1.count })

            // The same Multipart then takes a short message: nothing of the long one is left over.
            try push.send(multipart: [Array("x".utf8)])
            #expect(try Self.receive(pull, into: &message))
            #expect(Self.strings(message) == ["x"])
            #expect(message.byteCount == 1)
        }

        @Test func aFourMegabyteFrameBetweenSmallOnesArrivesByteIdentical() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)

            let big = patternBytes(count: 4 * 1024 * 1024, seed: 4242)
            try push.send(multipart: [Array("head".utf8), big, Array("tail".utf8)])
            var message = Multipart()
            #expect(try Self.receive(pull, into: &message))
            #expect(message.count == 3)
            #expect(message[0].string == "head")
            #expect(message[1].count == big.count)
            #expect(message[1].contentEquals(big))
            #expect(message[1].bytes == big)
            #expect(message[2].string == "tail")
            #expect(message.byteCount == big.count + 8)
        }

        @Test func dontWaitWithNothingWaitingReturnsFalseAndLeavesThePreviousMessage() throws {
            let context = try Context()
            let (push, pull) = try Self.pair(context, "multipart-dontwait")
            var message = Multipart()

            // Nothing ever received: still empty.
            #expect(try pull.receiveMultipart(into: &message, flags: .dontWait) == false)
            #expect(message.isEmpty)
            #expect(message.byteCount == 0)

            try push.send(multipart: [Array("one".utf8), Array("two".utf8)])
            #expect(try Self.receive(pull, into: &message))
            #expect(try pull.receiveMultipart(into: &message, flags: .dontWait) == false)
            // The code returns before clearing: the last message is still there, intact.
            #expect(Self.strings(message) == ["one", "two"])
            #expect(message.byteCount == 6)
        }

        @Test func aHeldFrameKeepsItsBytesWhenTheMultipartReceivesTheNextMessage() throws {
            let context = try Context()
            let (push, pull) = try Self.pair(context, "multipart-cow")
            var message = Multipart()

            try push.send(multipart: [Array("first-a".utf8), Array("first-b".utf8)])
            #expect(try Self.receive(pull, into: &message))
            let held = message[1]
            let heldAll = Array(message)

            // The next message has the same sizes, so a buffer reused in place would overwrite
            // exactly the bytes the held frames look at.
            try push.send(multipart: [Array("second1".utf8), Array("second2".utf8)])
            #expect(try Self.receive(pull, into: &message))
            #expect(Self.strings(message) == ["second1", "second2"])
            #expect(held.string == "first-b")
            #expect(held.contentEquals(Array("first-b".utf8)))
            #expect(heldAll.map(\.string) == ["first-a", "first-b"])

            // A copy of the whole Multipart is a value too.
            let copy = message
            try push.send(multipart: [Array("third".utf8)])
            #expect(try Self.receive(pull, into: &message))
            #expect(Self.strings(copy) == ["second1", "second2"])
            #expect(Self.strings(message) == ["third"])
        }

        @Test func withNoFrameHeldTheBufferIsReusedInPlace() throws {
            let context = try Context()
            let (push, pull) = try Self.pair(context, "multipart-reuse")
            var message = Multipart()

            try push.send(multipart: [patternBytes(count: 4096), [1]])
            #expect(try Self.receive(pull, into: &message))
            let firstAddress = message[0].withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }

            // Smaller than the first: fits in the capacity the first one left.
            try push.send(multipart: [patternBytes(count: 100, seed: 9), [2]])
            #expect(try Self.receive(pull, into: &message))
            let secondAddress = message[0].withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(firstAddress == secondAddress)
            #expect(message[0].bytes == patternBytes(count: 100, seed: 9))
            #expect(message[1].bytes == [2])

            // With a frame held, the next receive must not write into the held buffer.
            let held = message[0]
            let heldAddress = held.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            try push.send(multipart: [patternBytes(count: 100, seed: 10), [3]])
            #expect(try Self.receive(pull, into: &message))
            #expect(message[0].withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } != heldAddress)
            #expect(held.bytes == patternBytes(count: 100, seed: 9))
            #expect(message[0].bytes == patternBytes(count: 100, seed: 10))
        }

        @Test func multipartBuiltByHandIndexesItsFrames() {
            let message = Multipart([[1, 2], [], [3, 4, 5]] as [[UInt8]])
            #expect(message.count == 3)
            #expect(message.startIndex == 0)
            #expect(message.endIndex == 3)
            #expect(message.byteCount == 5)
            #expect(message.map(\.bytes) == [[1, 2], [], [3, 4, 5]])
            #expect(Multipart(["ab".utf8, "".utf8, "c".utf8]).map(\.string) == ["ab", "", "c"])
            #expect(Multipart().isEmpty)
            #expect(Multipart([[UInt8]]()).byteCount == 0)
        }

        @Test func frameContentEqualsByteArrays() {
            let frame = Frame([1, 2, 3])
            #expect(frame.contentEquals([1, 2, 3] as [UInt8]))
            #expect(!frame.contentEquals([1, 2] as [UInt8]))
            #expect(!frame.contentEquals([1, 2, 3, 4] as [UInt8]))
            #expect(!frame.contentEquals([1, 2, 4] as [UInt8]))
            #expect(!frame.contentEquals([0, 2, 3] as [UInt8]))
            #expect(!frame.contentEquals([] as [UInt8]))

            let empty = Frame([])
            #expect(empty.contentEquals([] as [UInt8]))
            #expect(!empty.contentEquals([0] as [UInt8]))

            // Frames of a Multipart start inside a shared buffer: the comparison must use that offset.
            let message = Multipart([[9, 9], [1, 2, 3], [], [1, 2, 3]] as [[UInt8]])
            #expect(message[1].contentEquals([1, 2, 3] as [UInt8]))
            #expect(!message[1].contentEquals([9, 9, 1] as [UInt8]))
            #expect(message[2].contentEquals([] as [UInt8]))
            #expect(message[3].contentEquals([1, 2, 3] as [UInt8]))
            #expect(!message[3].contentEquals([1, 2] as [UInt8]))
            #expect(!message[0].contentEquals([9, 9, 1] as [UInt8]))
        }

        @Test func frameContentEqualsOtherCollections() {
            let message = Multipart([Array("xx".utf8), Array("héllo".utf8)])
            #expect(message[1].contentEquals("héllo".utf8))
            #expect(!message[1].contentEquals("hello".utf8))
            #expect(!message[1].contentEquals("héll".utf8))
            #expect(message[1].contentEquals(Array("xxhéllo".utf8)[2...]))
            #expect(Frame([]).contentEquals("".utf8))
        }

        @Test func framesCompareByContentWhereverTheyLive() {
            let message = Multipart([[1, 2, 3], [7], [1, 2, 3], [], []] as [[UInt8]])
            #expect(message[0] == message[2])
            #expect(message[0] == Frame([1, 2, 3]))
            #expect(Frame([1, 2, 3]) == message[2])
            #expect(message[0] != message[1])
            #expect(message[0] != Frame([1, 2]))
            #expect(message[0] != Frame([1, 2, 3, 4]))
            #expect(message[0] != Frame([1, 2, 4]))
            #expect(message[3] == message[4])
            #expect(message[3] == Frame([]))
            #expect(message[1] != Frame([]))
        }

        @Test func frameBytesStringAndDescription() {
            let message = Multipart([Array("skip".utf8), Array("héllo 🎉".utf8), [0x66, 0xFF, 0x6F], []])
            #expect(message[1].bytes == Array("héllo 🎉".utf8))
            #expect(message[1].string == "héllo 🎉")
            #expect(message[1].count == "héllo 🎉".utf8.count)
            // Invalid UTF-8 becomes U+FFFD.
            #expect(message[2].string == "f\u{FFFD}o")
            #expect(message[2].bytes == [0x66, 0xFF, 0x6F])
            #expect(message[3].bytes == [])
            #expect(message[3].string == "")
            #expect(message[0].withUnsafeBytes { Array($0) } == Array("skip".utf8))
            #expect(message[3].withUnsafeBytes { $0.count } == 0)
            #expect(Frame(Array("abc".utf8)).description == "Frame(3 bytes: abc)")
            #expect(Frame([UInt8](repeating: 0x78, count: 40)).description.hasSuffix("…)"))
        }
    }
}
