import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WrapperTests {
    @Suite("Endpoints, errors and options")
    struct EndpointTests {
        @Test func wildcardPortIsReadBackAsAConnectableLoopbackEndpoint() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)

            let prefix = "tcp://127.0.0.1:"
            #expect(endpoint.hasPrefix(prefix))
            let port = try #require(Int(endpoint.dropFirst(prefix.count)))
            #expect(port > 0 && port < 65536)

            let push = try makeSocket(context, .push)
            try push.connect("tcp://127.0.0.1:\(port)")
            #expect(try push.lastEndpoint == endpoint)
            try push.send("reached")
            #expect(try receiveStrings(pull) == ["reached"])
        }

        @Test(arguments: [
            ("bind", "tcp://nonsense", EINVAL),
            ("connect", "tcp://nonsense", EINVAL),
            ("bind", "bogus://x", EPROTONOSUPPORT),
            ("connect", "bogus://x", EPROTONOSUPPORT),
        ])
        func badEndpointErrorNamesTheOperationAndEndpoint(operation: String, endpoint: String, code: Int32) throws {
            let context = try Context()
            let socket = try makeSocket(context, .dealer)
            let error = #expect(throws: ZMQError.self) {
                if operation == "bind" {
                    try socket.bind(endpoint)
                } else {
                    try socket.connect(endpoint)
                }
            }
            #expect(error?.code == code)
            #expect(error?.operation == "\(operation) \(endpoint)")
            #expect(error?.description.hasPrefix("\(operation) \(endpoint): ") == true)
            #expect(error?.message.isEmpty == false)
        }

        @Test func bindingATakenPortFailsWithAddressInUse() throws {
            let context = try Context()
            let first = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(first)
            let second = try makeSocket(context, .pull)

            let error = #expect(throws: ZMQError.self) { try second.bind(endpoint) }
            #expect(error?.code == EADDRINUSE)
            #expect(error?.description == "bind \(endpoint): Address already in use")
        }

        @Test func unbindFreesThePortForAnotherSocket() throws {
            let context = try Context()
            let first = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(first)
            try first.unbind(endpoint)
            // The listener closes on libzmq's I/O thread, so the port comes free shortly after.
            let second = try makeSocket(context, .pull)
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: patience)
            var lastError: ZMQError?
            repeat {
                do {
                    try second.bind(endpoint)
                    lastError = nil
                } catch {
                    lastError = error
                    var idle = Poller()
                    try idle.poll(timeout: .milliseconds(5))
                }
            } while lastError?.code == EADDRINUSE && clock.now < deadline
            #expect(lastError == nil)
            #expect(try second.lastEndpoint == endpoint)
        }

        @Test func receiverWithMaxMessageSizeNeverSeesAnOversizedMessage() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.set(.maxMessageSize, 1000)
            #expect(try pull.get(.maxMessageSize) == 1000)
            let endpoint = try bindLoopback(pull)

            do {
                let offender = try makeSocket(context, .push)
                try offender.connect(endpoint)
                try offender.send(patternBytes(count: 2000))
                #expect(try receiveMessage(pull, within: .milliseconds(500)) == nil)
            }

            // The oversized peer was disconnected; a new one is served as usual, and nothing
            // oversized ever came through.
            let wellBehaved = try makeSocket(context, .push)
            try wellBehaved.connect(endpoint)
            try wellBehaved.send(patternBytes(count: 1000))
            let received = try #require(try receiveMessage(pull))
            #expect(received.map(\.count) == [1000])
            #expect(try receiveMessage(pull, within: .milliseconds(100)) == nil)
        }

        @Test func optionsReadBackWhatWasSet() throws {
            let context = try Context()
            let socket = try Socket(context, type: .dealer)
            #expect(socket.type == .dealer)
            try socket.set(.linger, 250)
            #expect(try socket.get(.linger) == 250)
            try socket.set(.sendHighWaterMark, 42)
            #expect(try socket.get(.sendHighWaterMark) == 42)
            try socket.set(.immediate, true)
            #expect(try socket.get(.immediate))
            try socket.set(.maxMessageSize, 1 << 40)
            #expect(try socket.get(.maxMessageSize) == 1 << 40)
            let longID = [UInt8](repeating: 0x5A, count: 255)
            try socket.set(.routingID, longID)
            #expect(try socket.get(.routingID) == longID)
            try socket.set(.zapDomain, "conveyor")
            #expect(try socket.get(.zapDomain) == "conveyor")
            try socket.set(.linger, 0)
        }

        @Test func invalidOptionValueErrorNamesTheOption() throws {
            let context = try Context()
            let socket = try makeSocket(context, .dealer)
            let error = #expect(throws: ZMQError.self) { try socket.set(.routingID, []) }
            #expect(error?.code == EINVAL)
            #expect(error?.operation == "set ZMQ_ROUTING_ID")
        }

        @Test func libzmqReportsItsVersion() {
            let parts = libzmqVersion.split(separator: ".").compactMap { Int($0) }
            #expect(parts.count == 3)
            #expect(parts.first == 4)
        }
    }
}
