import Dispatch
import Foundation
import Testing
import ZeroMQ

extension WrapperTests {
    @Suite("Contexts")
    struct ContextTests {
        @Test func shutdownMakesABlockingReceiveOnAnotherThreadThrowContextTerminated() throws {
            let context = try Context()
            let ready = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            let outcome = Shared<String?>(nil)
            let terminated = Shared(false)

            let thread = Thread {
                defer { finished.signal() }
                do throws(ZMQError) {
                    // The socket belongs to this thread: created, used and closed here.
                    let socket = try Socket(context, type: .pull)
                    try socket.bind("inproc://blocked")
                    ready.signal()
                    let message = try socket.receive()
                    outcome.value = "receive returned \(String(describing: message))"
                } catch {
                    outcome.value = String(describing: error)
                    terminated.value = error.isContextTerminated
                }
            }
            thread.start()

            #expect(ready.wait(timeout: .now() + 5) == .success)
            context.shutdown()
            let result = finished.wait(timeout: .now() + 5)
            try #require(result == .success, "the receiving thread is still blocked after shutdown")
            #expect(terminated.value, "\(outcome.value ?? "no outcome")")
        }

        @Test func socketsCannotBeCreatedAfterShutdown() throws {
            let context = try Context()
            context.shutdown()
            let error = #expect(throws: ZMQError.self) { try Socket(context, type: .push) }
            #expect(error?.isContextTerminated == true)
            #expect(error?.operation == "create PUSH socket")
        }

        @Test func inprocEndpointsAreScopedToTheirContext() throws {
            let first = try Context()
            let second = try Context(ioThreads: 2)
            let pull = try makeSocket(first, .pull)
            try pull.bind("inproc://scoped")
            let elsewhere = try makeSocket(second, .pull)
            try elsewhere.bind("inproc://scoped")
            #expect(first.maxSockets > 0)
        }

        @Test func aSocketKeepsItsContextAlive() throws {
            func makeOrphan() throws -> Socket {
                let context = try Context()
                let socket = try makeSocket(context, .pair)
                try socket.bind("inproc://orphan")
                return socket
            }
            let socket = try makeOrphan()
            let peer = try makeSocket(socket.context, .pair)
            try peer.connect("inproc://orphan")
            try peer.send("still alive")
            #expect(try receiveStrings(socket) == ["still alive"])
        }
    }
}
