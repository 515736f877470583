import ConveyorProtocol
import Foundation
import ZeroMQ

/// What `TASKS` requests may look at: at most ``perRequest`` records each, and ``perWindow`` for
/// all of them together within a window of 20 ms, beyond which each still gets ``floor`` (so
/// every listing moves on). A page's cost is bounded by the first; a flood of requests in one
/// loop turn (512 of them can come at once) by the second, so that listings never hold up
/// submits and results for long, whatever the broker holds.
struct ListingBudget {
    static let perRequest = TaskPage.maxExamined
    static let perWindow = 20_000
    static let floor = 100
    static let windowNanoseconds: UInt64 = 20_000_000

    private var windowStart: UInt64 = 0
    private var spent = 0

    /// The records the next request may look at, at monotonic time `now`.
    mutating func grant(now: UInt64) -> Int {
        if now &- windowStart >= Self.windowNanoseconds {
            windowStart = now
            spent = 0
        }
        return max(Self.floor, min(Self.perRequest, Self.perWindow - spent))
    }

    mutating func spend(_ examined: Int) { spent += examined }
}

extension BrokerEngine {
    /// `TASKS` (docs/PROTOCOL.md §4.8.3): one page of tasks, read from the table without changing
    /// it. A query the broker cannot take is answered `{"error"}` naming the field; a producer
    /// without the admin role sees only the tasks its identity submitted, and asking for dead
    /// letters is refused to it (`ERROR refused TASKS: …`; `nil` is returned then).
    func tasksReply(_ body: Frame, access: PeerAccess, to route: Frame, version: ProtocolVersion,
                    now: BrokerInstant) -> OutgoingMessage? {
        var reply = OutgoingMessage(to: route, .tasksReply, version: version)
        func answer(error text: String) -> OutgoingMessage {
            reply.append(#"{"error":\#(JSONText.quoted(text))}"#)
            return reply
        }
        let query: TaskQuery
        do {
            query = try JSONDecoder().decode(TaskQuery.self, from: Data(body.bytes))
        } catch let error as TaskQueryError {
            return answer(error: error.message)
        } catch {
            return answer(error: #"the TASKS body is not JSON: it must be one JSON object, such as {"state":"failed","limit":100}"#)
        }
        var cursor: ListingCursor?
        if let text = query.cursor {
            guard let read = ListingCursor(text: text) else {
                return answer(error: "cursor '\(text.prefix(40))' is not one this broker gave: pass the previous page's next_cursor as it came, or none for the first page")
            }
            cursor = read
        }
        let admin = credentials == nil || access.roles.contains(.admin)
        if !admin, query.state == .dead {
            self.refuse("refused TASKS: listing dead letters needs the admin role; identity '\(access.identity)' has the roles \(access.roles)",
                        to: route, on: .frontend, version: version)
            return nil
        }
        let since = query.sinceMilliseconds.map { ms in
            let (ns, overflow) = UInt64(ms).multipliedReportingOverflow(by: 1_000_000)
            return overflow ? UInt64.max : ns
        }
        let filter = ListingFilter(states: query.state.map { [$0] }, name: query.name, since: since,
                                   owner: admin ? nil : access.identity, deadLetters: admin)
        let budget = listingBudget.grant(now: now.monotonic)
        let page = table.listTasks(filter, limit: query.limit, from: cursor, budget: budget)
        listingBudget.spend(page.examined)
        reply.append(TaskPage(tasks: page.tasks, nextCursor: page.next?.text, examined: page.examined).json)
        return reply
    }
}
