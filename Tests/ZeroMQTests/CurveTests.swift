import Testing
import ZeroMQ

extension WrapperTests {
    @Suite("CURVE security and Z85", .enabled(if: libzmqHas("curve"), "libzmq was built without CURVE"))
    struct CurveTests {
        /// A PULL CURVE server on a loopback port and the endpoint it is bound to.
        func curveServer(_ context: Context, keys: CurveKeyPair) throws -> (Socket, String) {
            let server = try makeSocket(context, .pull)
            try server.set(.curveServer, true)
            try server.set(.curveSecretKey, keys.secretKey)
            #expect(try server.get(.curveServer))
            return (server, try bindLoopback(server))
        }

        func curveClient(_ context: Context, serverKey: [UInt8], keys: CurveKeyPair) throws -> Socket {
            let client = try makeSocket(context, .push)
            try client.set(.curveServerKey, serverKey)
            try client.set(.curvePublicKey, keys.publicKey)
            try client.set(.curveSecretKey, keys.secretKey)
            return client
        }

        @Test func generatedKeyPairsAreFreshAnd32BytesEach() throws {
            let first = try CurveKeyPair.generate()
            let second = try CurveKeyPair.generate()
            #expect(first.publicKey.count == 32 && first.secretKey.count == 32)
            #expect(first.publicKey != first.secretKey)
            #expect(first != second)
        }

        @Test func clientWithTheServersKeyGetsAMessageThrough() throws {
            let serverKeys = try CurveKeyPair.generate()
            let clientKeys = try CurveKeyPair.generate()
            let context = try Context()
            let (server, endpoint) = try curveServer(context, keys: serverKeys)
            let client = try curveClient(context, serverKey: serverKeys.publicKey, keys: clientKeys)
            try client.connect(endpoint)

            try client.send(multipart: [Array("sealed".utf8), []])
            #expect(try receiveStrings(server) == ["sealed", ""])
        }

        @Test func clientWithAWrongServerKeyGetsNothingThrough() throws {
            let serverKeys = try CurveKeyPair.generate()
            let impostorKeys = try CurveKeyPair.generate()
            let clientKeys = try CurveKeyPair.generate()
            let context = try Context()
            let (server, endpoint) = try curveServer(context, keys: serverKeys)
            let client = try curveClient(context, serverKey: impostorKeys.publicKey, keys: clientKeys)
            let monitor = try SocketMonitor(server)
            try client.connect(endpoint)

            try client.send("should never arrive")
            #expect(try receiveMessage(server, within: .seconds(1)) == nil)
            // The server saw a handshake it could not complete, not silence.
            // (The client retries, so events keep coming: read only those already queued.)
            var kinds: [SocketEventKind] = []
            while let event = try monitor.next(timeout: .zero) {
                kinds.append(event.kind)
            }
            #expect(kinds.contains(.accepted))
            #expect(!kinds.contains(.handshakeSucceeded))
            #expect(kinds.contains { [.handshakeFailedProtocol, .handshakeFailedNoDetail].contains($0) })
        }

        @Test func plainTextClientGetsNothingThroughToACurveServer() throws {
            let serverKeys = try CurveKeyPair.generate()
            let context = try Context()
            let (server, endpoint) = try curveServer(context, keys: serverKeys)
            let client = try makeSocket(context, .push)
            try client.connect(endpoint)
            try client.send("plain")
            #expect(try receiveMessage(server, within: .seconds(1)) == nil)
        }

        @Test func z85MatchesTheRFC32TestVector() throws {
            let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
            #expect(try Z85.encode(bytes) == "HelloWorld")
            #expect(try Z85.decode("HelloWorld") == bytes)
        }

        @Test func z85RoundTripsKeysAndArbitraryBytes() throws {
            let keys = try CurveKeyPair.generate()
            let text = try Z85.encode(keys.publicKey)
            #expect(text.utf8.count == 40)
            #expect(try Z85.decode(text) == keys.publicKey)

            for count in [4, 8, 32, 100, 1024] {
                let bytes = patternBytes(count: count, seed: UInt32(count))
                let encoded = try Z85.encode(bytes)
                #expect(encoded.utf8.count == count * 5 / 4)
                #expect(try Z85.decode(encoded) == bytes)
            }
            #expect(try Z85.encode([]) == "")
            #expect(try Z85.decode("") == [])
            #expect(try Z85.encode([0, 0, 0, 0]) == "00000")
            #expect(try Z85.encode([0xFF, 0xFF, 0xFF, 0xFF]) == "%nSc0")
        }

        @Test(arguments: [
            "abcd",          // not a multiple of 5 characters
            "Hello World",   // not a multiple of 5, and a space
            "Hell World",    // a space is not in the alphabet
            "Hello\"orld",   // nor is a double quote
            "%nSc1",         // more than 0xFFFFFFFF
            "héllo",
        ])
        func z85RejectsBadText(_ text: String) {
            #expect(throws: ZMQError.self) { try Z85.decode(text) }
        }

        @Test func z85RefusesToEncodeAPartialGroup() {
            let error = #expect(throws: ZMQError.self) { try Z85.encode([1, 2, 3]) }
            #expect(error?.isContextTerminated == false)
        }
    }
}
