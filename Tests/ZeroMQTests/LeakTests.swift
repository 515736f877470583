import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WrapperTests {
    @Suite("Resource leaks", .enabled(if: FileManager.default.fileExists(atPath: "/proc/self/fd"), "needs /proc/self/fd"))
    struct LeakTests {
        static let inprocPairs = 9_000
        static let tcpPairs = 1_000
        static let batch = 100
        static let slack = 20

        /// A new socket, waiting (up to a deadline) while the context is at its socket limit.
        ///
        /// libzmq's reaper thread frees a closed socket's slot asynchronously, and a tight
        /// open/close loop can get ahead of it by more than `ZMQ_MAX_SOCKETS` (1023): then
        /// `zmq_socket` fails with EMFILE until the reaper catches up. A socket that was never
        /// closed would keep its slot for good and this would time out.
        func makeSocketWaitingForSlot(_ context: Context, _ type: SocketType) throws -> Socket {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            while true {
                do {
                    return try makeSocket(context, type)
                } catch let error as ZMQError where error.code == EMFILE && clock.now < deadline {
                    Thread.sleep(forTimeInterval: 0.001)
                }
            }
        }

        /// Opens, uses and releases `inprocPairs` + `tcpPairs` PUSH/PULL pairs in batches, in one
        /// context that is released at the end too.
        func churnSockets() throws -> Int {
            var opened = 0
            let context = try Context()
            for batchIndex in 0..<(Self.inprocPairs / Self.batch) {
                var sockets: [Socket] = []
                for pairIndex in 0..<Self.batch {
                    let endpoint = "inproc://leak-\(batchIndex)-\(pairIndex)"
                    let pull = try makeSocketWaitingForSlot(context, .pull)
                    try pull.bind(endpoint)
                    let push = try makeSocketWaitingForSlot(context, .push)
                    try push.connect(endpoint)
                    try push.send("x")
                    sockets += [pull, push]
                }
                for pull in stride(from: 0, to: sockets.count, by: 2) {
                    #expect(try sockets[pull].receive()?.string == "x")
                }
                opened += sockets.count
            }
            for _ in 0..<(Self.tcpPairs / Self.batch) {
                var sockets: [Socket] = []
                for _ in 0..<Self.batch {
                    let pull = try makeSocketWaitingForSlot(context, .pull)
                    let endpoint = try bindLoopback(pull)
                    let push = try makeSocketWaitingForSlot(context, .push)
                    try push.connect(endpoint)
                    try push.send("y")
                    sockets += [pull, push]
                }
                for pull in stride(from: 0, to: sockets.count, by: 2) {
                    #expect(try receiveStrings(sockets[pull]) == ["y"])
                }
                opened += sockets.count
            }
            return opened
        }

        @Test func openingAndClosingTwentyThousandSocketsLeavesNoFileDescriptorsBehind() throws {
            let before = try openFileDescriptorCount()
            let opened = try churnSockets()
            #expect(opened == 20_000)

            // libzmq's reaper thread closes sockets asynchronously: allow it a deadline to finish.
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            var after = try openFileDescriptorCount()
            while after > before + Self.slack, clock.now < deadline {
                Thread.sleep(forTimeInterval: 0.05)
                after = try openFileDescriptorCount()
            }
            #expect(after <= before + Self.slack, "open fds went from \(before) to \(after)")
        }

        @Test func closedSocketsGiveBackTheirContextSlots() throws {
            // Far more sockets than ZMQ_MAX_SOCKETS, opened and closed one after another in a
            // single context: each must give its slot back.
            let context = try Context()
            let limit = context.maxSockets
            for index in 0..<(limit * 3) {
                let socket = try makeSocketWaitingForSlot(context, .dealer)
                try socket.bind("inproc://slot-\(index)")
            }
        }
    }
}
