import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WrapperTests {
    @Suite("Polling and non-blocking calls")
    struct PollerTests {
        @Test func pollReturnsZeroWhenNothingArrivesBeforeTheTimeout() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://quiet")
            var poller = Poller()
            let index = poller.add(pull)
            #expect(try poller.poll(timeout: .milliseconds(50)) == 0)
            #expect(try poller.poll(timeout: .zero) == 0)
            #expect(!poller.isReadable(index))
            #expect(poller.events(at: index).isEmpty)
        }

        @Test func pollFindsTheSocketThatHasAMessage() throws {
            let context = try Context()
            let quiet = try makeSocket(context, .pull)
            try quiet.bind("inproc://poll-quiet")
            let busy = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(busy)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)

            var poller = Poller()
            let quietIndex = poller.add(quiet)
            let busyIndex = poller.add(busy)
            try push.send("wake up")

            #expect(try poller.poll(timeout: patience) == 1)
            #expect(poller.isReadable(busyIndex))
            #expect(!poller.isReadable(quietIndex))
            #expect(busy.readiness.contains(.readable))
            #expect(try busy.receive(flags: .dontWait)?.string == "wake up")
            #expect(!busy.readiness.contains(.readable))
        }

        @Test func pollReportsAWritableSocket() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://writable")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://writable")
            var poller = Poller()
            let index = poller.add(push, for: .writable)
            #expect(try poller.poll(timeout: patience) == 1)
            #expect(poller.events(at: index).contains(.writable))
        }

        @Test func pollWatchesPlainFileDescriptors() throws {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            defer {
                close(fds[0])
                close(fds[1])
            }
            var poller = Poller()
            let index = poller.add(fileDescriptor: fds[0])
            #expect(try poller.poll(timeout: .milliseconds(10)) == 0)
            var byte: UInt8 = 1
            #expect(write(fds[1], &byte, 1) == 1)
            #expect(try poller.poll(timeout: patience) == 1)
            #expect(poller.isReadable(index))
        }

        @Test func nonBlockingReceiveWithNothingWaitingReturnsNil() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://empty")
            #expect(try pull.receive(flags: .dontWait) == nil)
            #expect(try pull.receiveMultipart(flags: .dontWait) == nil)
            #expect(try pull.receiveBytes(flags: .dontWait) == nil)
        }

        @Test func receiveTimeoutReturnsNilInsteadOfThrowing() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.set(.receiveTimeout, 20)
            #expect(try pull.get(.receiveTimeout) == 20)
            try pull.bind("inproc://timeout")
            #expect(try pull.receive() == nil)
        }

        @Test func nonBlockingSendOnAPushWithoutPeersReturnsFalse() throws {
            let context = try Context()
            let unconnected = try makeSocket(context, .push)
            #expect(try unconnected.send("nowhere", flags: .dontWait) == false)

            let bound = try makeSocket(context, .push)
            _ = try bindLoopback(bound)
            #expect(try bound.send("nowhere", flags: .dontWait) == false)
            #expect(try bound.send([1, 2, 3], flags: .dontWait) == false)
            #expect(try bound.send(Message("nowhere"), flags: .dontWait) == false)
            #expect(try bound.send(multipart: [[1], [2]], flags: .dontWait) == false)
        }

        @Test func nonBlockingSendSucceedsOnceAPeerIsConnected() throws {
            let context = try Context()
            let push = try makeSocket(context, .push)
            try push.bind("inproc://peer-later")
            #expect(try push.send("too early", flags: .dontWait) == false)
            let pull = try makeSocket(context, .pull)
            try pull.connect("inproc://peer-later")
            // The bound PUSH learns of its new peer asynchronously: wait until it is writable.
            var poller = Poller()
            poller.add(push, for: .writable)
            #expect(try poller.poll(timeout: patience) == 1)
            #expect(try push.send("now", flags: .dontWait))
            #expect(try receiveStrings(pull) == ["now"])
        }
    }
}
