import Testing
import ZeroMQ

extension WrapperTests {
    @Suite("Socket patterns")
    struct SocketPatternTests {
        @Test func pushDeliversToPullOverInproc() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://pushpull")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://pushpull")

            for index in 0..<10 {
                #expect(try push.send("job \(index)"))
            }
            for index in 0..<10 {
                #expect(try receiveStrings(pull) == ["job \(index)"])
            }
        }

        @Test func pushDeliversToPullOverTCP() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)

            try push.send("over tcp")
            #expect(try receiveStrings(pull) == ["over tcp"])
        }

        @Test func routerSeesTheDealersRoutingIDAndRoutesTheReplyBack() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            let endpoint = try bindLoopback(router)
            let dealer = try makeSocket(context, .dealer)
            try dealer.set(.routingID, Array("worker-7".utf8))
            #expect(try dealer.get(.routingID) == Array("worker-7".utf8))
            try dealer.connect(endpoint)

            try dealer.send(multipart: [[], Array("ready".utf8)])
            let request = try #require(try receiveMessage(router))
            #expect(request.map(\.string) == ["worker-7", "", "ready"])

            try router.send(multipart: [request[0].bytes, [], Array("job-1".utf8)])
            #expect(try receiveStrings(dealer) == ["", "job-1"])
        }

        @Test func routerGivesAnonymousDealersDistinctRoutingIDs() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            try router.bind("inproc://router")
            let first = try makeSocket(context, .dealer)
            let second = try makeSocket(context, .dealer)
            try first.connect("inproc://router")
            try second.connect("inproc://router")

            try first.send("one")
            let fromFirst = try #require(try receiveMessage(router))
            try second.send("two")
            let fromSecond = try #require(try receiveMessage(router))
            #expect(fromFirst.count == 2 && fromSecond.count == 2)
            #expect(fromFirst[1].string == "one" && fromSecond[1].string == "two")
            #expect(!fromFirst[0].isEmpty)
            #expect(fromFirst[0].bytes != fromSecond[0].bytes)
        }

        @Test func requestGetsItsReply() throws {
            let context = try Context()
            let rep = try makeSocket(context, .rep)
            let endpoint = try bindLoopback(rep)
            let req = try makeSocket(context, .req)
            try req.connect(endpoint)

            for round in 0..<3 {
                try req.send("ping \(round)")
                #expect(try receiveStrings(rep) == ["ping \(round)"])
                try rep.send("pong \(round)")
                #expect(try receiveStrings(req) == ["pong \(round)"])
            }
        }

        @Test func requestSocketRefusesASecondRequestBeforeTheReply() throws {
            let context = try Context()
            let rep = try makeSocket(context, .rep)
            try rep.bind("inproc://strict-req")
            let req = try makeSocket(context, .req)
            try req.connect("inproc://strict-req")
            try req.send("first")
            let error = #expect(throws: ZMQError.self) { try req.send("second") }
            #expect(error?.operation == "send on REQ socket")
        }

        @Test func pairSocketsTalkBothWays() throws {
            let context = try Context()
            let left = try makeSocket(context, .pair)
            try left.bind("inproc://pair")
            let right = try makeSocket(context, .pair)
            try right.connect("inproc://pair")

            try left.send("left to right")
            #expect(try receiveStrings(right) == ["left to right"])
            try right.send("right to left")
            #expect(try receiveStrings(left) == ["right to left"])
        }

        @Test func subscriberReceivesOnlyItsTopicOnceJoined() throws {
            let context = try Context()
            let pub = try makeSocket(context, .pub)
            let endpoint = try bindLoopback(pub)
            let sub = try makeSocket(context, .sub)
            try sub.set(.subscribe, Array("news".utf8))
            try sub.connect(endpoint)

            // The subscription reaches the publisher some time after connect (the slow joiner):
            // until then the publisher drops everything. Publish until something arrives.
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: patience)
            var received: [String]?
            while received == nil, clock.now < deadline {
                try pub.send(multipart: [Array("sports".utf8), Array("ignored".utf8)])
                try pub.send(multipart: [Array("news".utf8), Array("hello".utf8)])
                received = try receiveStrings(sub, within: .milliseconds(20))
            }
            #expect(received == ["news", "hello"])

            // Everything that follows matches the subscription too.
            while let more = try receiveStrings(sub, within: .milliseconds(50)) {
                #expect(more.first == "news")
            }
        }

        @Test func routerMandatoryReportsAnUnknownPeerAsHostUnreachable() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            try router.set(.routerMandatory, true)  // write-only in libzmq: no get
            try router.bind("inproc://mandatory")

            let error = #expect(throws: ZMQError.self) {
                try router.send(multipart: [Array("nobody".utf8), Array("lost".utf8)])
            }
            #expect(error?.isHostUnreachable == true)
            #expect(error?.isWouldBlock == false)
        }

        @Test func routerWithoutMandatorySilentlyDropsMessagesForUnknownPeers() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            try router.bind("inproc://lenient")
            #expect(try router.send(multipart: [Array("nobody".utf8), Array("lost".utf8)]))
        }

        @Test func multipartMessageWithEmptyFramesArrivesIntact() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            let endpoint = try bindLoopback(pull)
            let push = try makeSocket(context, .push)
            try push.connect(endpoint)

            let frames = ["a", "", "", "b", ""]
            try push.send(multipart: frames.map { Array($0.utf8) })
            try push.send(multipart: frames.map { Message($0) })
            try push.send(multipart: [[], []])
            #expect(try receiveStrings(pull) == frames)
            #expect(try receiveStrings(pull) == frames)
            #expect(try receiveStrings(pull) == ["", ""])
        }

        @Test func multipartThroughRouterKeepsEmptyFrames() throws {
            let context = try Context()
            let router = try makeSocket(context, .router)
            try router.bind("inproc://router-empty")
            let dealer = try makeSocket(context, .dealer)
            try dealer.set(.routingID, Array("d".utf8))
            try dealer.connect("inproc://router-empty")

            try dealer.send(multipart: ["a", "", "", "b", ""].map { Array($0.utf8) })
            #expect(try receiveStrings(router) == ["d", "a", "", "", "b", ""])
        }

        @Test func hasMoreFramesTellsWhereAMessageEnds() throws {
            let context = try Context()
            let pull = try makeSocket(context, .pull)
            try pull.bind("inproc://more")
            let push = try makeSocket(context, .push)
            try push.connect("inproc://more")

            try push.send("first", flags: .more)
            try push.send("last")
            #expect(try pull.receive()?.string == "first")
            #expect(pull.hasMoreFrames)
            #expect(try pull.receive()?.string == "last")
            #expect(!pull.hasMoreFrames)
        }
    }
}
