import ConveyorProtocol
import Foundation
import Testing

/// The bodies of `TASKS` and `TASKS_REPLY` (docs/PROTOCOL.md §4.8.3): the query read and checked
/// field by field, and the page written byte for byte.
@Suite("TASKS query and page")
struct TaskQueryTests {
    func query(_ json: String) throws -> TaskQuery {
        try JSONDecoder().decode(TaskQuery.self, from: Data(json.utf8))
    }

    /// The refusal a body gets: the field it names and its text.
    func refusal(_ json: String) -> TaskQueryError? {
        do {
            _ = try query(json)
            return nil
        } catch let error as TaskQueryError {
            return error
        } catch {
            return TaskQueryError(field: "(not a query error)", "\(error)")
        }
    }

    @Test("A query with every field reads back as written; an empty object is every state, 100 at a time, from the start")
    func readsAndWrites() throws {
        let full = TaskQuery(state: .failed, name: "resize", sinceMilliseconds: 1_800_000_000_000, limit: 250, cursor: "done:17")
        #expect(full.json == #"{"cursor":"done:17","limit":250,"name":"resize","since_ms":1800000000000,"state":"failed"}"#)
        #expect(try query(full.json) == full)
        #expect(try query("{}") == TaskQuery())
        #expect(TaskQuery().json == #"{"limit":100}"#)
        #expect(try query(#"{"state":null,"cursor":null,"limit":null,"later_field":[1,2]}"#) == TaskQuery(),
                "null is an absent key, unknown keys are skipped")
        for state in TaskListState.all {
            #expect(try query(#"{"state":"\#(state)"}"#).state == state)
        }
    }

    @Test("Every wrong field is refused with a message that names it and says what it takes", arguments: [
        (#"{"state":"bogus"}"#, "state", "state 'bogus' is not a task state: use queued, scheduled, reserved, running, succeeded, failed, cancelled or dead"),
        (#"{"state":3}"#, "state", "state must be a string: queued, scheduled, reserved, running, succeeded, failed, cancelled or dead"),
        (#"{"limit":0}"#, "limit", "limit must be a whole number from 1 to 1000, not 0"),
        (#"{"limit":1001}"#, "limit", "limit must be a whole number from 1 to 1000, not 1001"),
        (#"{"limit":2.5}"#, "limit", "limit must be a whole number from 1 to 1000"),
        (#"{"limit":"10"}"#, "limit", "limit must be a whole number from 1 to 1000"),
        (#"{"since_ms":-1}"#, "since_ms", "since_ms must be a whole number of milliseconds since the Unix epoch, 0 or more, not -1"),
        (#"{"name":""}"#, "name", "name must be 1-255 bytes of visible ASCII, as task names are"),
        (#"{"name":"two words"}"#, "name", "name must be 1-255 bytes of visible ASCII, as task names are"),
        (#"{"cursor":5}"#, "cursor", "cursor must be the next_cursor string of the previous page"),
    ])
    func refusals(body: String, field: String, message: String) {
        #expect(refusal(body) == TaskQueryError(field: field, message), "\(body)")
    }

    @Test("A body that is not one JSON object is refused as a whole")
    func notAnObject() {
        for body in ["[]", #""failed""#, "7"] {
            #expect(refusal(body)?.field == nil, "\(body)")
            #expect(refusal(body)?.message.hasPrefix("the TASKS body must be one JSON object") == true, "\(body)")
        }
    }

    @Test("A page is written keys sorted, next_cursor null on the last page, and reads back; a state word of a later broker is kept")
    func pages() throws {
        let failed = TaskSummary(id: "f1", name: "fail", state: .failed, attempts: 1, acceptedAt: 1_800_000_000_000,
                                 updatedAt: 1_800_000_000_250, producer: "billing", status: "error",
                                 error: "disk \"on\" fire", kind: "handler_error")
        let running = TaskSummary(id: "r1", name: "sleep", state: .running, attempts: 2, acceptedAt: 1_800_000_000_001,
                                  producer: "billing", consumer: "vm:4242")
        let page = TaskPage(tasks: [running, failed], nextCursor: "live:43", examined: 120)
        #expect(page.json == #"{"examined":120,"next_cursor":"live:43","tasks":[{"accepted_at":1800000000001,"attempts":2,"consumer":"vm:4242","id":"r1","name":"sleep","producer":"billing","state":"running"},{"accepted_at":1800000000000,"attempts":1,"error":"disk \"on\" fire","id":"f1","kind":"handler_error","name":"fail","producer":"billing","state":"failed","status":"error","updated_at":1800000000250}]}"#)
        #expect(try JSONDecoder().decode(TaskPage.self, from: Data(page.json.utf8)) == page)
        let last = TaskPage(tasks: [], nextCursor: nil, examined: 0)
        #expect(last.json == #"{"examined":0,"next_cursor":null,"tasks":[]}"#)
        #expect(try JSONDecoder().decode(TaskPage.self, from: Data(last.json.utf8)) == last)
        let later = #"{"examined":1,"next_cursor":null,"tasks":[{"attempts":0,"id":"p1","name":"x","state":"paused","weight":3}]}"#
        let read = try JSONDecoder().decode(TaskPage.self, from: Data(later.utf8))
        #expect(read.tasks.first?.state == TaskListState(rawValue: "paused"))
        #expect(read.tasks.first.map { TaskListState.all.contains($0.state) } == false)
    }

    @Test("A finished task is listed by how it ended: ok succeeded, cancelled cancelled, anything else failed")
    func finishedStates() {
        #expect(TaskListState(finishedWith: .ok) == .succeeded)
        #expect(TaskListState(finishedWith: .cancelled) == .cancelled)
        for status in [TaskStatus.error, .timeout, .rejected, .unrecognized] {
            #expect(TaskListState(finishedWith: status) == .failed, "\(status)")
        }
    }
}
