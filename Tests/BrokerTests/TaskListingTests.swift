@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Logging
import Testing
import ZeroMQ

/// `TASKS` in the engine without sockets (docs/PROTOCOL.md §4.8.3): every state listed as it is,
/// pages that go on from their cursors and give each task once, a cost bounded by the records a
/// page may look at, refusals that name the field, and who may see what.
@Suite("Listing tasks by state (TASKS)")
struct TaskListingTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }
    let producer: [UInt8] = Wire.bytes("p-1")

    func consumer(_ n: UInt8, capacity: Int, threads: Int, names: [String]) {
        let info = ReadyInfo(capacity: capacity, tasks: names, host: "h", pid: Int(n), threads: threads, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: [0x43, n], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
    }

    func submit(_ id: String, name: String, _ options: TaskOptions = TaskOptions()) {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), options.encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func done(_ id: String, _ status: String, from n: UInt8, body: String = #"{"error":"boom","kind":"handler_error"}"#) {
        engine.handleBackend(Wire.envelope(from: [0x43, n], .done, [Wire.bytes(id), Wire.bytes(status), Wire.bytes(body), Wire.bytes("{}")]),
                             now: now)
    }

    /// The reply to one `TASKS` with `query`: the page, or the `error` it was refused with.
    func tasks(_ query: String, from route: [UInt8]? = nil) -> (page: TaskPage?, error: String?) {
        outbox.clear()
        engine.handleFrontend(Wire.envelope(from: route ?? producer, .tasks, [Wire.bytes(query)]), now: now)
        guard let body = outbox.messages.first(where: { $0.command == .tasksReply })?.body.first else { return (nil, nil) }
        struct Refusal: Decodable { let error: String? }
        if let error = (try? JSONDecoder().decode(Refusal.self, from: Data(body)))?.error { return (nil, error) }
        return (try? JSONDecoder().decode(TaskPage.self, from: Data(body)), nil)
    }

    /// Every page of `query` from the start, following the cursors.
    func allPages(_ query: TaskQuery) -> [TaskPage] {
        var query = query
        var pages: [TaskPage] = []
        while pages.count < 10_000, let page = tasks(query.json).page {
            pages.append(page)
            guard let next = page.nextCursor else { break }
            query.cursor = next
        }
        return pages
    }

    @Test("Each state is listed as it is: queued, scheduled, reserved, running, succeeded, failed, cancelled, dead")
    mutating func everyState() throws {
        consumer(1, capacity: 3, threads: 1, names: ["slow"])
        consumer(2, capacity: 4, threads: 4, names: ["work"])
        submit("run", name: "slow")
        submit("res", name: "slow")
        submit("wait", name: "nobody")
        submit("back", name: "work", TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 60_000))
        done("back", "retry", from: 2)
        submit("ok", name: "work")
        done("ok", "ok", from: 2, body: #"{"n":1}"#)
        submit("bad", name: "work")
        done("bad", "error", from: 2)
        submit("gone", name: "nobody")
        engine.handleFrontend(Wire.envelope(from: producer, .cancel, [Wire.bytes("gone")]), now: now)
        submit("dead", name: "work", TaskOptions(maxAttempts: 2, retryBackoffMilliseconds: 1))
        done("dead", "retry", from: 2)
        wall += 5_000_000
        engine.tick(now: now)
        done("dead", "retry", from: 2)

        let listed = allPages(TaskQuery(limit: 1000)).flatMap(\.tasks)
        let states = listed.map { "\($0.id)=\($0.state)" }
        #expect(states == ["run=running", "res=reserved", "wait=queued", "back=scheduled",
                           "ok=succeeded", "bad=failed", "gone=cancelled", "dead=failed", "dead=dead"],
                "unfinished by acceptance, then finished in the order they ended, then dead letters")
        let byState = Dictionary(grouping: listed, by: \.state)
        let running = try #require(byState[.running]?.first)
        #expect(running.consumer == "h:1" && running.attempts == 1 && running.updatedAt == nil)
        #expect(running.acceptedAt == Int64(wall / 1_000_000) - 5, "accepted 5 ms before the last tick")
        #expect(running.producer == "p-1")
        let failed = try #require(byState[.failed]?.first)
        #expect(failed.status == "error" && failed.error == "boom" && failed.kind == "handler_error" && failed.updatedAt != nil)
        #expect(byState[.cancelled]?.first?.error == "cancelled while queued" && byState[.cancelled]?.first?.kind == "cancelled")
        #expect(byState[.succeeded]?.first?.status == "ok" && byState[.succeeded]?.first?.error == nil)
        let dead = try #require(byState[.dead]?.first)
        #expect(dead.attempts == 2 && dead.error?.hasPrefix("failed 2 attempts; last error: boom") == true)
        #expect(dead.acceptedAt != nil && dead.updatedAt == Int64(wall / 1_000_000))
        for state in TaskListState.all {
            let only = allPages(TaskQuery(state: state, limit: 1000)).flatMap(\.tasks)
            #expect(only.map(\.id) == listed.filter { $0.state == state }.map(\.id), "\(state)")
        }
        #expect(allPages(TaskQuery(name: "slow", limit: 1000)).flatMap(\.tasks).map(\.id) == ["run", "res"])
    }

    @Test("Small pages give each task once, in order, following the cursor; a task accepted meanwhile comes at the end")
    func paging() throws {
        consumer(1, capacity: 5, threads: 5, names: ["echo"])
        for i in 1...12 { submit("e\(i)", name: "echo") }
        for i in 1...5 { done("e\(i)", "ok", from: 1, body: "{}") }
        var query = TaskQuery(limit: 4)
        var seen: [String] = []
        var pages = 0
        while true {
            let page = try #require(tasks(query.json).page)
            pages += 1
            #expect(page.tasks.count <= 4)
            seen += page.tasks.map(\.id)
            if pages == 1 { submit("late", name: "echo") }
            guard let next = page.nextCursor else { break }
            query.cursor = next
        }
        #expect(seen == (6...12).map { "e\($0)" } + ["late"] + (1...5).map { "e\($0)" })
        #expect(pages == 4)
    }

    @Test("A page looks at no more records than its budget, however many the broker holds; a cursor goes on where it stopped")
    mutating func costBound() {
        for i in 0..<30_000 { submit("q\(i)", name: i == 29_999 ? "rare" : "nobody") }
        // Asking for failed tasks costs only the finished ones: none here.
        let failed = tasks(#"{"state":"failed"}"#).page
        #expect(failed?.examined == 0 && failed?.tasks.isEmpty == true && failed?.nextCursor == nil)
        // A name found only at the end: pages of nothing, each within the bound, until it is.
        var query = TaskQuery(name: "rare", limit: 10)
        var examined: [Int] = []
        var found: [String] = []
        while examined.count < 10 {
            monotonic += ListingBudget.windowNanoseconds
            let page = tasks(query.json).page!
            examined.append(page.examined)
            found += page.tasks.map(\.id)
            guard let next = page.nextCursor else { break }
            query.cursor = next
        }
        #expect(examined == [10_000, 10_000, 10_000], "each page at most TaskPage.maxExamined, and no more pages than needed")
        #expect(found == ["q29999"])
        // The table's own bound, at any budget.
        let page = engine.table.listTasks(ListingFilter(), limit: 1000, from: nil, budget: 7)
        #expect(page.examined == 7 && page.tasks.count == 7 && page.next == ListingCursor(.live, 8))
    }

    @Test("Requests in one window share its budget: after 20,000 records each gets 100, and the next window starts afresh")
    mutating func sharedBudget() {
        for i in 0..<25_000 { submit("q\(i)", name: "nobody") }
        let query = #"{"name":"absent"}"#
        let examined = (0..<4).map { _ in tasks(query).page?.examined }
        #expect(examined == [10_000, 10_000, 100, 100])
        monotonic += ListingBudget.windowNanoseconds
        #expect(tasks(query).page?.examined == 10_000)
    }

    @Test("A query the broker cannot take gets an error naming the field; the broker answers the next one", arguments: [
        ("{", "the TASKS body is not JSON: it must be one JSON object, such as {\"state\":\"failed\",\"limit\":100}"),
        (#"{"state":"stuck"}"#, "state 'stuck' is not a task state: use queued, scheduled, reserved, running, succeeded, failed, cancelled or dead"),
        (#"{"limit":0}"#, "limit must be a whole number from 1 to 1000, not 0"),
        (#"{"limit":5000}"#, "limit must be a whole number from 1 to 1000, not 5000"),
        (#"{"cursor":"live:x"}"#, "cursor 'live:x' is not one this broker gave: pass the previous page's next_cursor as it came, or none for the first page"),
        (#"{"cursor":"later:3"}"#, "cursor 'later:3' is not one this broker gave: pass the previous page's next_cursor as it came, or none for the first page"),
    ])
    func refusals(query: String, error: String) {
        submit("t1", name: "nobody")
        #expect(tasks(query).error == error)
        #expect(tasks("{}").page?.tasks.map(\.id) == ["t1"])
    }

    @Test("A cursor of the finished part goes on there; one of the dead letters' part with a state of another part ends the listing")
    func cursorsAcrossParts() {
        consumer(1, capacity: 2, threads: 2, names: ["echo"])
        submit("a", name: "echo")
        done("a", "ok", from: 1, body: "{}")
        submit("b", name: "nobody")
        #expect(tasks(#"{"cursor":"done:0"}"#).page?.tasks.map(\.id) == ["a"])
        let page = tasks(#"{"state":"queued","cursor":"dead:0"}"#).page
        #expect(page?.tasks.isEmpty == true && page?.nextCursor == nil)
    }

    @Test("Finished tasks leave the live order at the next tick, and a long-lived task ahead of them does not keep them for ever")
    func liveOrderIsTrimmed() {
        consumer(1, capacity: 4, threads: 4, names: ["echo"])
        for i in 1...8 {
            submit("e\(i)", name: "echo")
            done("e\(i)", "ok", from: 1, body: "{}")
        }
        #expect(engine.table.live.count == 8)
        engine.tick(now: now)
        #expect(engine.table.live.count == 0)
        var live = LiveTasks()
        let account = ShareAccount(key: [])
        let records = (1...70_000).map {
            TaskRecord(id: "r\($0)", name: "x", args: [], options: TaskOptions(), producer: [], owner: account,
                       nameShare: account, sequence: UInt64($0), now: 0)
        }
        for record in records { live.append(record) }
        for record in records.dropFirst() { record.move(to: .done) }
        live.trim()
        #expect(live.count == 70_000, "the first one is live: nothing behind it leaves from the front")
        live.compactIfNeeded(live: 1)
        #expect(live.count == 1 && live[0] === records[0])
        #expect(live.firstIndex(atOrAfter: 1) == 0 && live.firstIndex(atOrAfter: 2) == 1)
    }

    @Test("Without the admin role a producer lists only its own tasks and no dead letters; an admin lists everyone's")
    func access() {
        final class Credentials: CredentialReader {
            var next: PeerAccess?
            func access(on side: BrokerSide) -> PeerAccess? { next }
        }
        let credentials = Credentials()
        engine.credentials = credentials
        let alice = PeerAccess(identity: "alice", roles: .submit, tasks: nil)
        let bob = PeerAccess(identity: "bob", roles: .submit, tasks: nil)
        let ops = PeerAccess(identity: "ops", roles: .admin, tasks: nil)
        let worker = PeerAccess(identity: "worker", roles: .consume, tasks: nil)
        func send(_ access: PeerAccess, connection: UInt64, _ command: Command, _ fields: [[UInt8]]) {
            credentials.next = access
            engine.handleFrontend(Wire.envelope(from: Wire.bytes("p-\(access.identity)"), command, fields), connection: connection, now: now)
        }
        func listed(_ access: PeerAccess, connection: UInt64, _ query: String = "{}") -> [String]? {
            outbox.clear()
            send(access, connection: connection, .tasks, [Wire.bytes(query)])
            let body = outbox.messages.first { $0.command == .tasksReply }?.body.first
            return body.flatMap { try? JSONDecoder().decode(TaskPage.self, from: Data($0)) }?.tasks.map { "\($0.id)@\($0.producer ?? "")" }
        }
        var errors: [String] { outbox.messages.filter { $0.command == .error }.map { String(decoding: $0.body[0], as: UTF8.self) } }
        for (access, connection, id) in [(alice, UInt64(1), "a1"), (bob, 2, "b1"), (alice, 1, "a2")] {
            send(access, connection: connection, .submit, [Wire.bytes(id), Wire.bytes("nobody"), TaskOptions().encoded(for: .current), Wire.bytes("{}")])
        }
        #expect(listed(alice, connection: 1) == ["a1@alice", "a2@alice"])
        #expect(listed(bob, connection: 2) == ["b1@bob"])
        #expect(listed(ops, connection: 3) == ["a1@alice", "b1@bob", "a2@alice"])
        #expect(listed(alice, connection: 1, #"{"state":"dead"}"#) == nil)
        #expect(errors == ["refused TASKS: listing dead letters needs the admin role; identity 'alice' has the roles submit"])
        #expect(listed(ops, connection: 3, #"{"state":"dead"}"#) == [])
        #expect(listed(worker, connection: 4) == nil)
        #expect(errors == ["refused TASKS: needs the submit role (for its own tasks) or admin (for anyone's); identity 'worker' has the roles consume"])
    }

    @Test("The broker's HELLO lists the tasks capability")
    func capability() throws {
        engine.handleFrontend(Wire.envelope(from: producer, .hello, [Wire.bytes(Hello(role: .producer).json)]), now: now)
        let body = try #require(outbox.messages.first { $0.command == .hello }?.body.first)
        #expect(try JSONDecoder().decode(Hello.self, from: Data(body)).capabilities.contains(.tasks))
    }
}
