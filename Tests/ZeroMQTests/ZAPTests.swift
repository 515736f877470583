import Foundation
import Testing
import ZeroMQ

extension WrapperTests {
    /// ZAP (RFC 27) against libzmq itself: a handler on its own thread decides, libzmq applies it.
    @Suite("ZAP handler and message metadata", .enabled(if: libzmqHas("curve"), "libzmq was built without CURVE"))
    struct ZAPTests {
        /// Serves ZAP on a thread of its own until `stop` is set, allowing the one key `allowed`
        /// as `alice` with a property; records every request.
        final class Handler: Sendable {
            let requests = Shared<[ZAPRequest]>([])
            let stop = Shared(false)
            let ready = Shared(false)

            func start(_ context: Context, allowed: [UInt8]) {
                let thread = Thread { [self] in
                    guard let handler = try? ZAPHandler(context) else { return }
                    ready.value = true
                    var poller = Poller()
                    poller.add(handler.socket)
                    while !stop.value {
                        guard (try? poller.poll(timeout: .milliseconds(20))) ?? 0 > 0 else { continue }
                        _ = try? handler.answerNext { request in
                            requests.value.append(request)
                            guard request.curveClientKey == allowed else {
                                return ZAPReply(status: .failure, text: "not on the list")
                            }
                            return ZAPReply(status: .success, text: "OK", userID: "alice",
                                            properties: [(name: "X-Roles", value: Array("submit,admin".utf8))])
                        }
                    }
                }
                thread.start()
                while !ready.value { usleep(1000) }
            }
        }

        func client(_ context: Context, serverKey: [UInt8], keys: CurveKeyPair) throws -> Socket {
            let client = try makeSocket(context, .dealer)
            try client.set(.curveServerKey, serverKey)
            try client.set(.curvePublicKey, keys.publicKey)
            try client.set(.curveSecretKey, keys.secretKey)
            return client
        }

        @Test func anAllowedKeysMessagesCarryTheUserIdAndTheHandlersProperties() throws {
            let context = try Context()
            let serverKeys = try CurveKeyPair.generate(), aliceKeys = try CurveKeyPair.generate()
            let handler = Handler()
            handler.start(context, allowed: aliceKeys.publicKey)
            defer { handler.stop.value = true }
            let server = try makeSocket(context, .router)
            try server.set(.curveServer, true)
            try server.set(.curveSecretKey, serverKeys.secretKey)
            try server.set(.zapDomain, "test-domain")
            let endpoint = try bindLoopback(server)
            let alice = try client(context, serverKey: serverKeys.publicKey, keys: aliceKeys)
            try alice.connect(endpoint)
            try alice.send("hello")

            var poller = Poller()
            poller.add(server)
            #expect(try poller.poll(timeout: patience) == 1)
            var received = Multipart()
            let metadata = MessageMetadata()
            #expect(try server.receiveMultipart(into: &received, metadata: metadata, flags: .dontWait))
            #expect(received.count == 2 && received[1].string == "hello")
            #expect(metadata.property("User-Id") == "alice")
            #expect(metadata.property("X-Roles") == "submit,admin")
            #expect(metadata.property("Peer-Address") == "127.0.0.1")
            #expect(metadata.property("No-Such-Property") == nil)
            #expect(metadata.withProperty("User-Id") { $0.map { String(decoding: $0, as: UTF8.self) } } == "alice")
            let request = try #require(handler.requests.value.first)
            #expect(request.mechanism == "CURVE" && request.domain == "test-domain" && request.address == "127.0.0.1")
            #expect(request.curveClientKey == aliceKeys.publicKey)
            // Nothing waiting: the holder is emptied, not left with the previous message's properties.
            #expect(try server.receiveMultipart(into: &received, metadata: metadata, flags: .dontWait) == false)
            #expect(metadata.property("User-Id") == nil)
        }

        @Test func aRefusedKeyGetsNothingThroughAndItsClientSeesAnAuthenticationFailure() throws {
            let context = try Context()
            let serverKeys = try CurveKeyPair.generate()
            let handler = Handler()
            handler.start(context, allowed: try CurveKeyPair.generate().publicKey)
            defer { handler.stop.value = true }
            let server = try makeSocket(context, .router)
            try server.set(.curveServer, true)
            try server.set(.curveSecretKey, serverKeys.secretKey)
            let endpoint = try bindLoopback(server)
            let mallory = try client(context, serverKey: serverKeys.publicKey, keys: try CurveKeyPair.generate())
            let monitor = try SocketMonitor(mallory)
            try mallory.connect(endpoint)
            try mallory.send("let me in")
            #expect(try receiveMessage(server, within: .seconds(1)) == nil)
            let failure = try monitor.waitFor(.handshakeFailedAuth, timeout: patience)
            #expect(failure?.value == 400)
            #expect(handler.requests.value.count == 1)
        }

        @Test func aMonitorOnAnotherThreadSeesConnectionsAcceptedAndGone() throws {
            let context = try Context()
            let endpointName = "inproc://zap-tests-monitor"
            // The reader connects first (inproc allows it), so no event is lost.
            let monitor = try SocketMonitor(context: context, endpoint: endpointName)
            let server = try makeSocket(context, .router)
            try server.startMonitor(endpoint: endpointName, events: [.accepted, .disconnected])
            let endpoint = try bindLoopback(server)
            var peer: Socket? = try makeSocket(context, .dealer)
            try peer?.connect(endpoint)
            let accepted = try #require(try monitor.waitFor(.accepted, timeout: patience))
            #expect(accepted.value > 2, "the accepted connection's file descriptor")
            peer = nil
            let gone = try #require(try monitor.waitFor(.disconnected, timeout: patience))
            #expect(gone.value == accepted.value)
        }
    }
}

