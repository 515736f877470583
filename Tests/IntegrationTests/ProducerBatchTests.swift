import ConveyorProtocol
import ConveyorTesting
import Foundation
import ConveyorProducer
import Synchronization
import Testing
import ZeroMQ

/// `Producer.submit(batch:)`, `TaskHandle.whenDone(_:)` and `Producer.makeTaskID()`, against a
/// real broker and real consumer processes.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ProducerBatchTests {
    @Test("2,500 echo tasks in one batch over a window of 300 all come back ok, handles in input order with their ids")
    func largeBatchGoesInParts() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer { $0.window = 300 }
            let count = 2_500
            // Even tasks carry their own id, odd ones get one from the producer.
            let submissions = (0..<count).map { i in
                TaskSubmission("echo", json: RawJSON(#"{"i":\#(i),"pad":"batch"}"#), id: i % 2 == 0 ? "batch-\(i)" : nil)
            }
            let handles = try await producer.submit(batch: submissions)
            #expect(handles.count == count)
            #expect(Set(handles.map(\.id)).count == count, "every handle has its own id")

            let prefix = producer.makeTaskID().utf8.prefix(8)
            var madeIDs: [String] = []
            for (i, handle) in handles.enumerated() {
                if i % 2 == 0 {
                    #expect(handle.id == "batch-\(i)")
                } else {
                    #expect(handle.id.utf8.count == 15, "\(handle.id)")
                    #expect(handle.id.utf8.prefix(8).elementsEqual(prefix), "\(handle.id)")
                    madeIDs.append(handle.id)
                }
            }
            // The ids the producer made for the batch follow the batch's order.
            #expect(zip(madeIDs, madeIDs.dropFirst()).allSatisfy { $0.utf8.lexicographicallyPrecedes($1.utf8) })

            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.id == handle.id)
                #expect(result.status == .ok, "task \(i): \(result)")
                #expect(result.body.text == #"{"i":\#(i),"pad":"batch"}"#, "task \(i)")
                #expect(handle.isDone)
            }
            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == count)
            #expect(stats.totals.completed == count)
            #expect(stats.totals.duplicatesDropped == 0)

            // The window is whole again: a batch exactly its size goes in one part and completes.
            let again = try await producer.submit(batch: (0..<300).map { TaskSubmission("echo", json: RawJSON("\($0)")) })
            for (i, handle) in again.enumerated() { #expect(await handle.result().body.text == "\(i)") }
        }
    }

    @Test("an empty batch gives no handles")
    func emptyBatch() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            let producer = try cluster.makeProducer()
            #expect(try await producer.submit(batch: []).isEmpty)
        }
    }

    @Test("submitDetached: 1,000 tasks over a window of 100 with no consumer are all accepted; they stay queued after the producer is gone, and run later")
    func detachedBatchLargerThanTheWindow() async throws {
        try await withCluster(.init(consumers: 0, brokerArguments: ["--max-queued", "1000", "--queue-share", "100"])) { cluster in
            let count = 1_000
            var configuration = ProducerConfiguration(broker: cluster.frontend)
            configuration.window = 100
            // Were the slots freed only by results, this would wait for them forever: no consumer runs.
            let receipts = try await withProducer(configuration, logger: testLogger) { producer in
                try await producer.submitDetached(batch: (0..<count).map { TaskSubmission("echo", json: RawJSON("[\($0)]")) }
                                                  + [TaskSubmission("echo", json: RawJSON("[]"), id: "one-too-many")])
            }
            #expect(receipts.count == count + 1)
            #expect(receipts.prefix(count).allSatisfy { $0.isAccepted })
            #expect(Set(receipts.map(\.id)).count == count + 1)
            let refused = try #require(receipts.last?.refusal, "the queue is full at 1,000")
            #expect(refused.id == "one-too-many" && refused.status == .rejected)
            #expect(refused.errorMessage?.contains("queue full") == true, "\(refused.body.text)")
            #expect(try await cluster.stats().queuedTotal == count, "the producer's shutdown cancelled nothing")

            try cluster.startConsumer(threads: 2)
            let producer = try cluster.makeProducer()
            for (i, receipt) in receipts.prefix(count).enumerated() {
                var report = try await producer.status(id: receipt.id)
                let deadline = ContinuousClock.now.advanced(by: .seconds(30))
                while report.state != .done, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                    report = try await producer.status(id: receipt.id)
                }
                #expect(report.result?.status == .ok, "task \(i): \(report)")
                #expect(report.result?.body.text == "[\(i)]", "task \(i)")
            }
        }
    }

    @Test("whenDone runs exactly once per task with the result result() gives, whether registered before or after the result")
    func whenDoneOncePerTask() async throws {
        // No consumer at first: the tasks stay queued, so callbacks registered now certainly come
        // before the results.
        try await withCluster(.init(consumers: 0)) { cluster in
            let producer = try cluster.makeProducer()
            let count = 200
            let handles = try await producer.submit(batch: (0..<count).map { TaskSubmission("echo", json: RawJSON("[\($0)]")) })
            #expect(try await cluster.stats().queuedTotal == count)

            let early = CallRecorder(count: count)
            for (i, handle) in handles.enumerated() {
                #expect(!handle.isDone)
                handle.whenDone { early.record(i, $0) }
            }
            #expect(early.total == 0, "no result yet, so no callback yet")

            try cluster.startConsumer(threads: 2)
            var results: [TaskResult] = []
            for handle in handles { results.append(await handle.result()) }
            // Waiters are resumed before callbacks run: wait for the callbacks too.
            try await waitUntil { early.total >= count }
            for (i, result) in results.enumerated() {
                #expect(result.status == .ok)
                #expect(result.body.text == "[\(i)]")
                #expect(early.calls(i) == [result], "task \(i)")
            }

            // Registered after the result arrived: runs at once, on this thread, before whenDone returns.
            let late = CallRecorder(count: count)
            for (i, handle) in handles.enumerated() {
                handle.whenDone { late.record(i, $0) }
                #expect(late.calls(i) == [results[i]], "task \(i)")
            }
            // Several callbacks on one handle each run once.
            let extra = CallRecorder(count: 1)
            handles[0].whenDone { extra.record(0, $0) }
            handles[0].whenDone { extra.record(0, $0) }
            #expect(extra.calls(0) == [results[0], results[0]])

            // Nothing runs twice later on.
            _ = try await producer.submit("echo", json: "0").result()
            #expect(early.total == count)
            #expect(late.total == count)
        }
    }

    @Test("whenDone registered on a running task is called on the producer's I/O thread as the result arrives")
    func whenDoneOnARunningTask() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer()
            let handles = try await producer.submit(batch: [TaskSubmission("sleep", json: RawJSON(#"{"ms":300}"#))])
            let recorder = CallRecorder(count: 1)
            handles[0].whenDone { recorder.record(0, $0) }
            let result = await handles[0].result()
            try await waitUntil { recorder.total == 1 }
            #expect(recorder.calls(0) == [result])
            #expect(result.body.text == #"{"slept_ms":300}"#)
        }
    }

    @Test("an id twice in one batch is one task: same id and result for both handles, run once")
    func duplicateIDInOneBatch() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let handles = try await producer.submit(batch: [
                TaskSubmission("echo", json: RawJSON(#"{"copy":1}"#), id: "dup-in-batch"),
                TaskSubmission("echo", json: RawJSON(#"{"other":true}"#)),
                TaskSubmission("echo", json: RawJSON(#"{"copy":2}"#), id: "dup-in-batch"),
            ])
            #expect(handles.count == 3)
            #expect(handles[0].id == "dup-in-batch")
            #expect(handles[2].id == "dup-in-batch")
            let first = await handles[0].result()
            let second = await handles[2].result()
            #expect(first == second)
            #expect(first.status == .ok)
            // The first submission is the task; the second is the same task again.
            #expect(first.body.text == #"{"copy":1}"#)
            #expect(await handles[1].result().body.text == #"{"other":true}"#)

            // Both handles share one result cell: a callback on either sees the same result.
            let recorder = CallRecorder(count: 2)
            handles[0].whenDone { recorder.record(0, $0) }
            handles[2].whenDone { recorder.record(1, $0) }
            #expect(recorder.calls(0) == [first])
            #expect(recorder.calls(1) == [first])

            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == 2)
            #expect(stats.totals.completed == 2)

            // The window slot of the duplicate was given back: a full window still goes through.
            let full = try await producer.submit(batch: (0..<producer.configuration.window).map {
                TaskSubmission("echo", json: RawJSON("\($0)"))
            })
            for handle in full { #expect(await handle.result().status == .ok) }
        }
    }

    @Test("an id twice in a batch that goes in parts still runs once")
    func duplicateIDAcrossParts() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer { $0.window = 2 }
            let handles = try await producer.submit(batch: [
                TaskSubmission("echo", json: RawJSON(#"{"n":1}"#), id: "dup-across"),
                TaskSubmission("echo", json: RawJSON(#"{"n":2}"#)),
                TaskSubmission("echo", json: RawJSON(#"{"n":3}"#)),
                // The same task again (same name and args: other args would be rejected).
                TaskSubmission("echo", json: RawJSON(#"{"n":1}"#), id: "dup-across"),
                TaskSubmission("echo", json: RawJSON(#"{"n":5}"#)),
            ])
            #expect(handles.map(\.id)[0] == "dup-across")
            #expect(handles.map(\.id)[3] == "dup-across")
            let results = await handles.asyncMap { await $0.result() }
            #expect(results.allSatisfy { $0.status == .ok })
            #expect(results.map(\.body.text) == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#, #"{"n":1}"#, #"{"n":5}"#])
            #expect(results[0] == results[3])
            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == 4)
            #expect(stats.totals.completed == 4)
        }
    }

    @Test("invalid ids in a batch do not throw: those handles end rejected, the others succeed")
    func invalidIDsInABatch() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let invalid = ["has space", "", "tâche", String(repeating: "x", count: 256), "tab\there", "has space"]
            var submissions: [TaskSubmission] = []
            for (i, id) in invalid.enumerated() {
                submissions.append(TaskSubmission("echo", json: RawJSON("\(i)")))
                submissions.append(TaskSubmission("echo", json: RawJSON("\(i)"), id: id))
            }
            submissions.append(TaskSubmission("echo", json: RawJSON("\"last\""), id: String(repeating: "y", count: 255)))
            let handles = try await producer.submit(batch: submissions)
            #expect(handles.count == submissions.count)

            for (i, id) in invalid.enumerated() {
                let good = await handles[2 * i].result()
                #expect(good.status == .ok, "task before invalid id \(id.debugDescription): \(good)")
                #expect(good.body.text == "\(i)")

                let bad = handles[2 * i + 1]
                #expect(bad.id == id)
                let result = await bad.result()
                #expect(result.id == id)
                #expect(result.status == .rejected, "id \(id.debugDescription): \(result)")
                #expect(result.errorKind == .rejected)
                #expect(result.errorMessage == "task id must be 1-255 bytes of visible ASCII", "id \(id.debugDescription)")
                #expect(result.info == nil)
            }
            // 255 bytes of visible ASCII is a valid id.
            let last = await handles.last!.result()
            #expect(last.status == .ok)
            #expect(last.body.text == "\"last\"")

            let stats = try await cluster.stats()
            #expect(stats.totals.submitted == invalid.count + 1)

            // A single submit of such an id throws instead.
            await #expect(throws: ProducerError.rejected(id: "has space", reason: "task id must be 1-255 bytes of visible ASCII")) {
                _ = try await producer.submit("echo", json: "1", id: "has space")
            }
        }
    }

    @Test("a task in a later part of a batch gets its whole timeout, counted from when it is sent, not from the batch's start")
    func laterPartsKeepTheirTimeout() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            // A window of 1: the second task is sent only when the first has finished (~2 s in).
            // Each task has 3 s from its submission; the broker times it out at ~5 s, and it
            // finishes at ~4 s. The producer must wait for that result (until ~2 + 3 + 0.2 s).
            let producer = try cluster.makeProducer {
                $0.window = 1
                $0.resultGrace = .milliseconds(200)
            }
            let options = TaskOptions(timeoutMilliseconds: 3_000)
            let handles = try await producer.submit(batch: [
                TaskSubmission("sleep", json: RawJSON(#"{"ms":2000}"#), options: options),
                TaskSubmission("sleep", json: RawJSON(#"{"ms":2000}"#), options: options),
            ])
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok, "task \(i): \(result.body.text)")
                #expect(result.body.text == #"{"slept_ms":2000}"#, "task \(i)")
            }
        }
    }

    @Test("a single submit that waited for a window slot still gets its whole timeout")
    func submitAfterWaitingForTheWindowKeepsItsTimeout() async throws {
        try await withCluster(.init(consumers: 1, threads: 1)) { cluster in
            let producer = try cluster.makeProducer {
                $0.window = 1
                $0.resultGrace = .milliseconds(200)
            }
            let options = TaskOptions(timeoutMilliseconds: 3_000)
            let first = try await producer.submit("sleep", json: #"{"ms":2000}"#, options: options)
            // Waits ~2 s for the slot, then has 3 s (+ grace) for a task that takes 2 s.
            let second = try await producer.submit("sleep", json: #"{"ms":2000}"#, options: options)
            #expect(await first.result().status == .ok)
            let result = await second.result()
            #expect(result.status == .ok, "\(result.body.text)")
        }
    }

    @Test("run submits and waits in one call: results, errors and a refused id come back as results")
    func runRoundTrips() async throws {
        try await withCluster(.init(consumers: 1, threads: 2)) { cluster in
            let producer = try cluster.makeProducer()
            let ok = try await producer.run("echo", json: #"{"n":7}"#)
            #expect(ok.status == .ok && ok.body.text == #"{"n":7}"#)
            #expect(ok.info?.pid != nil)
            let failed = try await producer.run("fail", json: #"{"message":"no"}"#)
            #expect(failed.status == .error && failed.errorMessage == "no")
            let refused = try await producer.run("echo", json: "[1]", id: "has space")
            #expect(refused.status == .rejected)
            for i in 0..<200 {
                #expect(try await producer.run("echo", json: "[\(i)]").body.text == "[\(i)]")
            }
        }
    }

    @Test("no broker: a batch comes back as timeout results without throwing, a single submit throws, run returns a timeout")
    func noBrokerAnswers() async throws {
        // Nothing listens on port 9 (discard is not served here): ZeroMQ keeps trying to connect.
        var configuration = ProducerConfiguration(broker: "tcp://127.0.0.1:9")
        configuration.requestTimeout = .milliseconds(300)
        try await withProducer(configuration, logger: testLogger) { producer in
            let handles = try await producer.submit(batch: (0..<50).map { TaskSubmission("echo", json: RawJSON("[\($0)]")) })
            #expect(handles.count == 50)
            for handle in handles {
                let result = await handle.result()
                #expect(result.status == .timeout)
                #expect(result.errorMessage?.contains("no answer from the broker") == true, "\(result.body.text)")
            }
            await #expect(throws: ProducerError.self) { try await producer.submit("echo", json: "[1]") }
            #expect(try await producer.run("echo", json: RawJSON("[2]")).status == .timeout)
        }
    }

    @Test("a broker of another protocol version fails submits and requests at once with an error naming both versions")
    func olderBroker() async throws {
        // A version-1 broker: it answers everything with an ERROR in its own version. Its socket
        // lives on its own thread (sockets are not shared between threads).
        final class OldBroker: Sendable {
            let stop = Atomic<Bool>(false)
            let endpoint = Mutex<String?>(nil)
            let bound = DispatchSemaphore(value: 0)
        }
        let old = OldBroker()
        let answering = Thread {
            guard let context = try? Context(), let router = try? Socket(context, type: .router),
                  (try? router.set(.linger, 0)) != nil, (try? router.bind("tcp://127.0.0.1:*")) != nil else {
                old.bound.signal()
                return
            }
            old.endpoint.withLock { $0 = try? router.lastEndpoint }
            old.bound.signal()
            var poller = Poller()
            poller.add(router)
            while !old.stop.load(ordering: .relaxed) {
                guard (try? poller.poll(timeout: .milliseconds(20))) ?? 0 > 0,
                      let frames = try? router.receiveMultipart(flags: .dontWait), let peer = frames.first else { continue }
                _ = try? router.send(multipart: [peer.bytes, Array("CVY1".utf8), [0x1F],
                                                 Array(#"unsupported protocol "CVY2": this peer speaks "CVY1""#.utf8)])
            }
        }
        answering.start()
        defer { old.stop.store(true, ordering: .relaxed) }
        old.bound.wait()
        let endpoint = try #require(old.endpoint.withLock { $0 })
        var configuration = ProducerConfiguration(broker: endpoint)
        configuration.requestTimeout = .seconds(60)
        try await withProducer(configuration, logger: testLogger) { producer in
            let started = ContinuousClock.now
            await #expect(throws: ProducerError.protocolError("the broker speaks protocol CVY1; this producer speaks CVY3")) {
                try await producer.submit("echo", json: "[1]")
            }
            let handles = try await producer.submit(batch: [TaskSubmission("echo", json: RawJSON("[2]"))])
            #expect(await handles[0].result().status == .error)
            await #expect(throws: ProducerError.self) { try await producer.stats() }
            #expect(started.duration(to: .now) < .seconds(30), "well before the 60 s request timeout")
        }
    }

    @Test("makeTaskID: 15 bytes of visible ASCII, unique over 100,000 calls, sorted in call order, a prefix per producer")
    func taskIDs() throws {
        // Ids need no running producer: these are never run (and so start no thread).
        let first = Producer(configuration: .init(broker: "tcp://127.0.0.1:1"), logger: testLogger)
        let second = Producer(configuration: .init(broker: "tcp://127.0.0.1:1"), logger: testLogger)
        let count = 100_000
        let ids = (0..<count).map { _ in first.makeTaskID() }
        #expect(ids.allSatisfy { $0.utf8.count == 15 })
        #expect(ids.allSatisfy { $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } })
        #expect(Set(ids).count == count)
        var outOfOrder = 0
        for (a, b) in zip(ids, ids.dropFirst()) where !a.utf8.lexicographicallyPrecedes(b.utf8) {
            outOfOrder += 1
            if outOfOrder <= 3 { Issue.record("\(a) does not sort before \(b)") }
        }
        #expect(outOfOrder == 0)
        // Swift's own string order agrees (plain ASCII).
        #expect(ids == ids.sorted())

        let prefix = Array(ids[0].utf8.prefix(8))
        #expect(ids.allSatisfy { $0.utf8.prefix(8).elementsEqual(prefix) })
        let other = second.makeTaskID()
        #expect(other.utf8.count == 15)
        // A letter first: no id reads as a command-line option ("-…").
        for id in [ids[0], other] + (0..<64).map({ _ in
            Producer(configuration: .init(broker: "tcp://127.0.0.1:1"), logger: testLogger).makeTaskID()
        }) {
            #expect(id.first?.isLetter == true, "\(id)")
        }
        #expect(!other.utf8.prefix(8).elementsEqual(prefix), "two producers, two prefixes")
        #expect(!Set(ids).contains(other))
    }

    @Test("makeTaskID from many threads at once never repeats")
    func taskIDsConcurrently() async throws {
        let producer = Producer(configuration: .init(broker: "tcp://127.0.0.1:1"), logger: testLogger)
        let all = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<25_000).map { _ in producer.makeTaskID() } }
            }
            var all: [String] = []
            for await ids in group {
                // Within one caller, still in call order.
                #expect(ids == ids.sorted())
                all += ids
            }
            return all
        }
        #expect(all.count == 100_000)
        #expect(Set(all).count == 100_000)
    }
}

/// Records `whenDone` calls per handle index, from any thread.
final class CallRecorder: Sendable {
    private let storage: Mutex<[[TaskResult]]>

    init(count: Int) { storage = Mutex(Array(repeating: [], count: count)) }

    func record(_ index: Int, _ result: TaskResult) { storage.withLock { $0[index].append(result) } }
    func calls(_ index: Int) -> [TaskResult] { storage.withLock { $0[index] } }
    var total: Int { storage.withLock { $0.reduce(0) { $0 + $1.count } } }
}
