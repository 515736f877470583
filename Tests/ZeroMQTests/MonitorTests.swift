import Testing
import ZeroMQ

extension WrapperTests {
    @Suite("Socket monitor")
    struct MonitorTests {
        @Test func connectingDealerSeesConnectedThenDisconnectedWhenThePeerCloses() throws {
            let context = try Context()
            let dealer = try makeSocket(context, .dealer)
            let monitor = try SocketMonitor(dealer)

            let endpoint: String
            do {
                let router = try makeSocket(context, .router)
                endpoint = try bindLoopback(router)
                try withExtendedLifetime(router) {
                    try dealer.connect(endpoint)
                    let connected = try #require(try monitor.waitFor(.connected, timeout: patience))
                    #expect(connected.endpoint == endpoint)
                    #expect(connected.value > 0, "the value of a connected event is the socket's fd")

                    // The connection carries traffic before the router goes away.
                    try dealer.send("hello")
                    #expect(try receiveStrings(router)?.last == "hello")
                }
            }
            // The router is closed now.
            let disconnected = try #require(try monitor.waitFor(.disconnected, timeout: patience))
            #expect(disconnected.endpoint == endpoint)
            withExtendedLifetime(dealer) {}
        }

        @Test func bindingSideSeesListeningThenAccepted() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            let monitor = try SocketMonitor(router)
            let endpoint = try bindLoopback(router)
            let listening = try #require(try monitor.waitFor(.listening, timeout: patience))
            #expect(listening.endpoint == endpoint)

            let dealer = try makeSocket(context, .dealer)
            try dealer.connect(endpoint)
            let accepted = try #require(try monitor.waitFor(.accepted, timeout: patience))
            #expect(accepted.endpoint == endpoint)
            withExtendedLifetime((router, dealer)) {}
        }

        @Test func connectingToNothingReportsRetries() throws {
            let context = try Context()
            // A port that was free a moment ago and now has no listener.
            let port: String
            do {
                let probe = try makeSocket(context, .pull)
                port = try bindLoopback(probe)
                try probe.unbind(port)
            }
            let dealer = try makeSocket(context, .dealer)
            try dealer.set(.reconnectInterval, 10)
            let monitor = try SocketMonitor(dealer)
            try dealer.connect(port)
            #expect(try monitor.waitFor(.connectRetried, timeout: patience) != nil)
            withExtendedLifetime(dealer) {}
        }

        @Test func monitorReturnsNilWhenNothingHappens() throws {
            let context = try Context()
            let socket = try makeSocket(context, .pull)
            let monitor = try SocketMonitor(socket)
            #expect(try monitor.next(timeout: .milliseconds(50)) == nil)
            #expect(try monitor.waitFor(.accepted, timeout: .milliseconds(50)) == nil)
            withExtendedLifetime(socket) {}
        }
    }
}
