import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import Testing
import ZeroMQ

/// What one peer may do to the broker, as the probes of the hostile-peer issue did it, against a
/// real broker, with a bystander checking that everyone else is still served.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostilePeerTests {
    static let tag = Array("CVY3".utf8)

    /// A normal 2,000-task batch from another producer: every task `ok`, within a generous bound.
    static func bystanderBatch(_ cluster: Cluster, count: Int = 2_000) async throws {
        let producer = try cluster.makeProducer()
        let started = ContinuousClock.now
        let stats = try await producer.stats()
        #expect(started.duration(to: .now) < .seconds(5), "a bystander's STATS answered within 5 s")
        #expect(stats.totals.illegalTransitions == 0)
        let handles = try await producer.submit(batch: (0..<count).map { TaskSubmission("echo", json: RawJSON(#"{"b":\#($0)}"#)) })
        for (i, handle) in handles.enumerated() {
            let result = await handle.result()
            #expect(result.status == .ok && result.body.text == #"{"b":\#(i)}"#, "bystander task \(i): \(result)")
        }
    }

    @Test("a fat READY flood: each refused with ERROR at once, the broker's memory stays bounded, others are served")
    func fatReadyFlood() async throws {
        try await withCluster(.init(consumers: 1, threads: 4)) { cluster in
            let pid = try #require(cluster.broker?.pid)
            let before = residentBytes(pid)
            let backend = cluster.backend
            let started = ContinuousClock.now
            let errors = try await runOnDedicatedThread(name: "hostile-ready", stop: StopFlag()) { () throws -> [String] in
                let context = try Context()
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                try socket.connect(backend)
                // 300,000 names: 3.6 MB, under the frame cap; then 2,000 short names, under the size cap.
                let fat = #"{"capacity":4,"threads":4,"host":"x","pid":1,"tasks":["# +
                    (0..<300_000).map { #""n\#($0)""# }.joined(separator: ",") + "]}"
                let many = #"{"capacity":4,"threads":4,"host":"x","pid":1,"tasks":["# +
                    (0..<2_000).map { #""m\#($0)""# }.joined(separator: ",") + "]}"
                for round in 0..<40 {
                    try socket.send(multipart: [Self.tag, [Command.ready.rawValue], Array((round % 2 == 0 ? fat : many).utf8)])
                }
                var errors: [String] = []
                var poller = Poller()
                poller.add(socket)
                while errors.count < 40, try poller.poll(timeout: .seconds(10)) > 0,
                      let frames = try socket.receiveMultipart(flags: .dontWait) {
                    if frames.count >= 3, frames[1].bytes == [Command.error.rawValue] { errors.append(frames[2].string) }
                }
                return errors
            }
            #expect(errors.count == 40, "every fat READY answered with ERROR (\(errors.count))")
            #expect(errors.contains { $0.contains("READY body is") && $0.contains("at most 65536") })
            #expect(errors.contains { $0.contains("lists 2000 task names") && $0.contains("at most 1000") })
            #expect(started.duration(to: .now) < .seconds(30))
            let turn = try #require(try await cluster.stats().longestTurnEverMilliseconds)
            #expect(turn < 1_000, "a fat READY held the broker thread for \(turn) ms")
            try await Self.bystanderBatch(cluster)
            let growth = residentBytes(pid) - before
            #expect(growth < 256 << 20, "broker grew \(growth >> 20) MB")
            #expect(try await cluster.stats().consumers.count == 1, "the hostile peer was not registered")
        }
    }

    @Test("a peer that asks and never reads: 1,500 STATUS of a 1 MiB result cost the broker its budget of unread bytes, not 1.5 GB; told why, resumed once it reads")
    func askAndNeverRead() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let pid = try #require(cluster.broker?.pid)
            let producer = try cluster.makeProducer()
            let big = RawJSON(#"{"pad":""# + String(repeating: "x", count: 1 << 20) + #""}"#)
            let handle = try await producer.submit("echo", json: big)
            #expect(await handle.result().status == .ok)
            let id = handle.id
            let before = residentBytes(pid)
            let frontend = cluster.frontend
            let measured = StopFlag()
            async let hostile = runOnDedicatedThread(name: "hostile-status", stop: StopFlag()) { () throws -> (errors: [String], resumed: String?, read: Int) in
                let context = try Context()
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                // Its libzmq takes one message from the connection and then stops reading it.
                try socket.set(.receiveHighWaterMark, 1)
                try socket.connect(frontend)
                for _ in 0..<1_500 {
                    try socket.send(multipart: [Self.tag, [Command.status.rawValue], Array(id.utf8)])
                }
                while !measured.isSet { usleep(50_000) }
                // Now it reads everything it was sent, reports it, and is told to resubmit.
                var errors: [String] = [], read = 0, resumed: String?
                var poller = Poller()
                poller.add(socket)
                var reported = false
                while try poller.poll(timeout: .seconds(reported ? 5 : 2)) > 0 || !reported {
                    while let frames = try socket.receiveMultipart(flags: .dontWait) {
                        read += frames.reduce(0) { $0 + $1.count }
                        if frames.count >= 3, frames[1].bytes == [Command.error.rawValue] { errors.append(frames[2].string) }
                        if frames.count >= 3, frames[1].bytes == [Command.resume.rawValue] { resumed = frames[2].string }
                    }
                    if resumed != nil { break }
                    if !reported, try poller.poll(timeout: .milliseconds(500)) == 0 {
                        try socket.send(multipart: [Self.tag, [Command.read.rawValue], Array(String(read).utf8)])
                        reported = true
                    }
                }
                return (errors, resumed, read)
            }
            try await Task.sleep(for: .seconds(3))
            let growth = residentBytes(pid) - before
            let stats = try await cluster.stats()
            try await Self.bystanderBatch(cluster)
            measured.set()
            let outcome = try await hostile
            #expect(growth < 256 << 20, "broker grew \(growth >> 20) MB")
            #expect((stats.repliesDropped ?? 0) > 1_000, "\(String(describing: stats.repliesDropped)) replies dropped")
            #expect((stats.unreadBytes ?? 0) <= 66 << 20, "\(String(describing: stats.unreadBytes)) bytes unread")
            #expect(outcome.errors.count == 1 && outcome.errors[0].contains("replies to this connection are dropped"), "\(outcome.errors)")
            #expect(outcome.read < 100 << 20, "it was sent \(outcome.read >> 20) MB, not 1.5 GB")
            #expect(outcome.resumed?.contains(#""dropped":"#) == true, "\(String(describing: outcome.resumed))")
            print("ask and never read: broker +\(growth >> 20) MB, \(stats.repliesDropped ?? 0) replies dropped, the peer was sent \(outcome.read >> 20) MB, then \(outcome.resumed ?? "no RESUME")")
        }
    }

    @Test("a consumer that announces 100,000 threads and never answers gets 64 tasks, loses them when their leases run out, and is quarantined")
    func blackHoleConsumer() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--lease-seconds", "2"])) { cluster in
            let backend = cluster.backend
            let stop = StopFlag()
            // The black hole: registers, heartbeats, counts what it is sent, answers nothing.
            async let received = runOnDedicatedThread(name: "black-hole", stop: stop) { () throws -> Int in
                let context = try Context()
                let socket = try Socket(context, type: .dealer)
                try socket.set(.linger, 0)
                try socket.connect(backend)
                try socket.send(multipart: [Self.tag, [Command.ready.rawValue],
                                            Array(#"{"capacity":100000,"threads":100000,"host":"hole","pid":7,"tasks":["echo"]}"#.utf8)])
                var groups = 0
                var poller = Poller()
                poller.add(socket)
                var lastBeat = ContinuousClock.now
                while !stop.isSet {
                    if try poller.poll(timeout: .milliseconds(100)) > 0 {
                        while let frames = try socket.receiveMultipart(flags: .dontWait) {
                            if frames.count >= 3, frames[1].bytes == [Command.dispatch.rawValue] {
                                groups += Self.fieldCount(frames[2].bytes) / 4
                            }
                        }
                    }
                    if lastBeat.duration(to: .now) > .milliseconds(300) {
                        try socket.send(multipart: [Self.tag, [Command.heartbeat.rawValue]])
                        lastBeat = .now
                    }
                }
                return groups
            }
            try await waitUntil { (try? await cluster.stats())?.consumers.count == 1 }
            try cluster.startConsumer(threads: 4)
            try await cluster.waitForConsumers(2)
            let producer = try cluster.makeProducer()
            let options = TaskOptions(timeoutMilliseconds: 20_000)
            let handles = try await producer.submit(batch: (0..<2_000).map {
                TaskSubmission("echo", json: RawJSON(#"{"i":\#($0)}"#), options: options)
            })
            var ok = 0
            for handle in handles where await handle.result().status == .ok { ok += 1 }
            let hole = try await cluster.stats().consumers.first { $0.host == "hole" }
            stop.set()
            let captured = try await received
            #expect(captured <= Limits.initialCredit, "the black hole was sent \(captured) tasks")
            #expect(ok == 2_000, "\(ok) of 2,000 ended ok: the black hole's were taken back when their leases ran out")
            #expect(hole?.quarantined == true && (hole?.leasesExpired ?? 0) >= 3, "\(String(describing: hole))")
            print("black hole: sent \(captured) tasks, \(hole?.leasesExpired ?? 0) leases ran out; \(ok) of 2,000 ended ok on the real consumer")
        }
    }

    @Test("--max-queued-bytes bounds what the broker holds in bytes: 1 MiB args past 8 MiB are refused, saying why")
    func queuedBytesBound() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--max-queued-bytes", "\(8 << 20)", "--queue-share", "100"])) { cluster in
            let producer = try cluster.makeProducer()
            let big = RawJSON(#"{"pad":""# + String(repeating: "x", count: 1 << 20) + #""}"#)
            let receipts = try await producer.submitDetached(batch: (0..<12).map { _ in TaskSubmission("echo", json: big) })
            let refused = receipts.compactMap(\.refusal)
            #expect(receipts.count - refused.count == 7, "7 of 1 MiB fit under 8 MiB")
            #expect(refused.allSatisfy { $0.errorMessage?.contains("--max-queued-bytes 8388608") == true }, "\(refused.first.map { "\($0)" } ?? "")")
            // Once they are done, the room is back.
            try cluster.startConsumer(threads: 2)
            try await waitUntil { (try? await cluster.stats())?.totals.completed == 7 }
            let again = try await producer.submitDetached(batch: [TaskSubmission("echo", json: big)])
            #expect(again.first?.refusal == nil)
        }
    }

    @Test("a real consumer renews what it holds: 5 s tasks under 2 s leases run once, none taken back")
    func realConsumerRenews() async throws {
        let log = try Cluster.makeTemporaryDirectory(prefix: "conveyor-exec-") + "/executions.ndjson"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: log).deletingLastPathComponent().path) }
        try await withCluster(.init(consumers: 2, threads: 2, brokerArguments: ["--lease-seconds", "2"],
                                    consumerArguments: ["--execution-log", log, "--prefetch", "2"])) { cluster in
            let producer = try cluster.makeProducer()
            let handles = try await producer.submit(batch: (0..<6).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":5000}"#)) })
            for handle in handles { #expect(await handle.result().status == .ok) }
            let stats = try await cluster.stats()
            #expect(stats.consumers.allSatisfy { ($0.leasesExpired ?? 0) == 0 && $0.quarantined == false }, "\(stats.consumers)")
            #expect(Durability.executions(log).values.allSatisfy { $0 == 1 }, "each ran once")
        }
    }

    @Test("tasks waiting to retry count against --max-queued, and no backoff outlasts its task's deadline")
    func retriesCountAgainstTheBound() async throws {
        try await withCluster(.init(consumers: 1, threads: 4, brokerArguments: ["--max-queued", "50", "--queue-share", "100"])) { cluster in
            let producer = try cluster.makeProducer()
            // Ten minutes of backoff, but four seconds to live.
            let options = TaskOptions(timeoutMilliseconds: 4_000, maxAttempts: 3, retryBackoffMilliseconds: 600_000)
            let started = ContinuousClock.now
            let handles = try await producer.submit(batch: (0..<50).map {
                TaskSubmission("fail", json: RawJSON(#"{"message":"no \#($0)"}"#), options: options)
            })
            try await waitUntil { (try? await cluster.stats())?.delayed == 50 }
            let stats = try await cluster.stats()
            #expect(stats.queuedTotal == 0 && stats.delayed == 50)
            do {
                _ = try await producer.submit("nobody-serves-this", json: "{}")
                Issue.record("a task was queued past --max-queued")
            } catch {
                #expect("\(error)".contains("queue full") && "\(error)".contains("50 waiting to retry"), "\(error)")
            }
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .timeout, "\(result)")
            }
            #expect(started.duration(to: .now) < .seconds(40), "the backoffs ended with their tasks' deadlines")
        }
    }

    @Test("a dead producer's backlog is purged by name: each task ends cancelled, saying so; other names are untouched")
    func purgeByName() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let gone = try cluster.makeProducer()
            let receipts = try await gone.submitDetached(batch: (0..<500).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":1000}"#)) })
            let other = try cluster.makeProducer()
            let kept = try await other.submit(batch: (0..<20).map { TaskSubmission("echo", json: RawJSON(#"{"k":\#($0)}"#)) })
            let purge = try ManagedProcess(name: "purge", executable: cluster.executable,
                                           arguments: ["purge", "sleep", "--broker", cluster.frontend])
            #expect(purge.waitForExit(timeout: .seconds(30)) == 0)
            #expect(purge.output.contains("purged 500 waiting tasks named 'sleep'"), "\(purge.output)")
            let stats = try await cluster.stats()
            #expect(stats.queued == ["echo": 20], "\(stats.queued)")
            let report = try await other.status(id: try #require(receipts.first?.id))
            #expect(report.state == .done && report.result?.status == .cancelled)
            #expect(report.result?.errorMessage?.contains("purged") == true, "\(String(describing: report.result))")
            #expect(try await other.purge(name: "nothing-waits") == 0)
            await #expect(throws: ProducerError.self) { _ = try await other.purge(name: "bad name") }
            try cluster.startConsumer(threads: 4)
            for (i, handle) in kept.enumerated() { #expect(await handle.result().body.text == #"{"k":\#(i)}"#) }
        }
    }

    @Test("one producer flooding a name nobody serves takes at most its share of --max-queued: another producer's 2,000 tasks all run")
    func floodTakesItsShareOnly() async throws {
        try await withCluster(.init(consumers: 1, threads: 4, brokerArguments: ["--max-queued", "10000"])) { cluster in
            let flooder = try cluster.makeProducer()
            let receipts = try await flooder.submitDetached(batch: (0..<12_000).map { _ in
                TaskSubmission("nobody-serves-this", json: RawJSON("{}"))
            })
            let refused = receipts.compactMap(\.refusal)
            #expect(receipts.count - refused.count == 5_000, "half of --max-queued 10000 for one producer and one name")
            let reason = refused.first?.errorMessage ?? ""
            #expect(reason.contains("queue share used") && reason.contains("50% of --max-queued 10000"), "\(reason)")
            #expect(reason.contains("no connected consumer serves 'nobody-serves-this'"), "\(reason)")
            try await Self.bystanderBatch(cluster)
            #expect(try await cluster.stats().queued["nobody-serves-this"] == 5_000)
        }
    }

    @Test("a dead producer's backlog does not hold up a new producer's tasks of the same name: producers take turns")
    func producersTakeTurns() async throws {
        try await withCluster(.init(consumers: 1, threads: 4)) { cluster in
            // 20 s of work for 4 threads, left behind by a producer that is gone.
            _ = try await withProducer(ProducerConfiguration(broker: cluster.frontend), logger: testLogger) { gone in
                try await gone.submitDetached(batch: (0..<800).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":100}"#)) })
            }
            let producer = try cluster.makeProducer()
            let started = ContinuousClock.now
            let handles = try await producer.submit(batch: (0..<20).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":10}"#)) })
            for handle in handles { #expect(await handle.result().status == .ok) }
            let waited = started.duration(to: .now)
            // In turn with the backlog: about 40 tasks on 4 threads, 1 s; behind it, 20 s.
            #expect(waited < .seconds(8), "the new producer's tasks waited \(waited)")
            let left = try await cluster.stats().queued["sleep"] ?? 0
            #expect(left > 500, "the backlog was still there: \(left) queued")
            print("producer turns: 20 tasks behind an 800-task backlog done in \(waited), \(left) of the backlog still queued")
        }
    }

    @Test("cancel_on_disconnect: a producer killed with -9, or one that shuts down, has its waiting tasks cancelled; others' stay")
    func cancelOnDisconnect() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let cli = try ManagedProcess(name: "submit", executable: cluster.executable, arguments: [
                "submit", "sleep", #"{"ms":10}"#, "--id", "cod-killed", "--cancel-on-disconnect", "--broker", cluster.frontend,
            ])
            let options = TaskOptions(cancelOnDisconnect: true)
            _ = try await withProducer(ProducerConfiguration(broker: cluster.frontend), logger: testLogger) { gone in
                try await gone.submitDetached(batch: (0..<5).map {
                    TaskSubmission("sleep", json: RawJSON(#"{"ms":10}"#), options: options, id: "cod-closed-\($0)")
                })
            }
            let other = try cluster.makeProducer()
            let kept = try await other.submitDetached(batch: (0..<5).map { _ in TaskSubmission("sleep", json: RawJSON(#"{"ms":10}"#)) })
            try await waitUntil { (try? await other.status(id: "cod-killed"))?.state == .queued }
            kill(cli.pid, SIGKILL)
            _ = cli.waitForExit(timeout: .seconds(10))
            // 4 s of silence (10 s after the broker's start at the earliest), then cancelled.
            try await waitUntil(timeout: .seconds(40)) { (try? await other.status(id: "cod-killed"))?.state == .done }
            let report = try await other.status(id: "cod-killed")
            #expect(report.result?.status == .cancelled)
            #expect(report.result?.errorMessage?.contains("producer disconnected") == true, "\(String(describing: report.result))")
            for n in 0..<5 { #expect(try await other.status(id: "cod-closed-\(n)").result?.status == .cancelled) }
            for receipt in kept { #expect(try await other.status(id: receipt.id).state == .queued, "without the option it waits on") }
            #expect(try await cluster.stats().queuedTotal == 5)
        }
    }

    @Test("the broker raises its open-files limit to the hard limit")
    func fileDescriptorLimit() throws {
        let executable = try Cluster.locateExecutable()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            print("skipped: prlimit (util-linux) is not installed")
            return
        }
        let broker = try ManagedProcess(name: "broker", executable: URL(fileURLWithPath: "/usr/bin/prlimit"),
                                        arguments: ["--nofile=256:4096", executable.path, "broker", "--in-memory",
                                                    "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"])
        defer { broker.stop() }
        #expect(broker.waitForLine(containing: "backend ", timeout: .seconds(30)) != nil)
        let limits = try String(contentsOfFile: "/proc/\(broker.pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        #expect(numbers == [4096, 4096], "\(line)")
    }

    /// Fields in a packed frame (PROTOCOL.md): each a 4-byte big-endian length and its bytes.
    static func fieldCount(_ bytes: [UInt8]) -> Int {
        var offset = 0, count = 0
        while offset + 4 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            offset += 4 + length
            count += 1
        }
        return count
    }
}
