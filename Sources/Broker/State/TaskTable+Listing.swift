import ConveyorProtocol
import Foundation

/// Where a `TASKS` listing stands (docs/PROTOCOL.md §4.8.3): the part it is in and the position
/// to go on from there. A listing goes through three parts, each in an order that stays put while
/// tasks come and go, so that a cursor names the same place page after page:
///
/// - `live`: the tasks not finished, by acceptance (``TaskRecord/sequence``, ``LiveTasks``); the
///   position is a sequence number, which survives a broker restart.
/// - `done`: the kept results, in the order the tasks finished (``ResultStore``, positions counted
///   from the first result ever kept).
/// - `dead`: the dead letters, in the order they came (``DeadLetter/number``).
///
/// On the wire it is `PART:POSITION` (`live:1042`), which clients pass back untouched.
struct ListingCursor: Equatable {
    enum Part: String, CaseIterable {
        case live, done, dead
    }

    var part: Part
    /// The first position (sequence, result position, letter number) the next page looks at.
    var position: UInt64

    init(_ part: Part, _ position: UInt64) {
        self.part = part
        self.position = position
    }

    /// Reads the text of a cursor this broker gave; `nil` for anything else.
    init?(text: String) {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 2, let part = Part(rawValue: String(pieces[0])), let position = UInt64(pieces[1]) else {
            return nil
        }
        self.init(part, position)
    }

    var text: String { "\(part.rawValue):\(position)" }
}

/// What a listing keeps: every field of the query but the page's size and cursor, and what the
/// asker may see.
struct ListingFilter {
    /// `nil`: every state.
    var states: Set<TaskListState>?
    var name: String?
    /// Wall-clock ns (``TaskQuery/sinceMilliseconds``).
    var since: UInt64?
    /// Only tasks this identity submitted (a producer without the admin role); `nil`: anyone's.
    var owner: String?
    /// Whether dead letters are listed (to an admin, or without client authentication).
    var deadLetters = true

    func wants(_ state: TaskListState) -> Bool { states?.contains(state) ?? true }

    /// The parts of the listing that can hold a task this filter keeps, in listing order.
    var parts: [ListingCursor.Part] {
        var parts: [ListingCursor.Part] = []
        if states.map({ !$0.isDisjoint(with: TaskListState.unfinished) }) ?? true { parts.append(.live) }
        if states.map({ !$0.isDisjoint(with: TaskListState.finished) }) ?? true { parts.append(.done) }
        if deadLetters, wants(.dead) { parts.append(.dead) }
        return parts
    }
}

/// One page as the table found it.
struct ListingPage {
    var tasks: [TaskSummary] = []
    /// `nil` once the listing is complete.
    var next: ListingCursor?
    /// Records looked at: entries stepped over, and the tasks of each consumer whose running
    /// tasks were sorted into running and reserved.
    var examined = 0
}

extension TaskTable {
    /// One page of tasks that `filter` keeps: at most `limit` of them, looking at `budget` records
    /// at most, from `cursor` (`nil`: the start). Reads the table, changes nothing.
    ///
    /// The budget is what bounds the cost, whatever the table holds: a page stops once it has
    /// looked at `budget` records, matching or not, and says where to go on. The one excess: the
    /// running tasks of a consumer are sorted into running and reserved all at once (as
    /// ``isReserved(_:)`` would, one at a time), so a page whose first record needs a consumer
    /// holding more than `budget` tasks looks at all of those (at most the largest capacity a
    /// consumer may announce, 100,000); any later one ends the page instead.
    func listTasks(_ filter: ListingFilter, limit: Int, from cursor: ListingCursor?, budget: Int) -> ListingPage {
        var page = ListingPage()
        let parts = filter.parts
        // A cursor of a part this filter does not list: go on with the next part it does.
        let start = cursor ?? parts.first.map { ListingCursor($0, 0) }
        guard let start else { return page }
        var classifier = ReservedClassifier()
        let order = ListingCursor.Part.allCases
        for part in parts where order.firstIndex(of: part)! >= order.firstIndex(of: start.part)! {
            let from = part == start.part ? start.position : 0
            let stop: ListingCursor?
            switch part {
            case .live: stop = listLive(filter, from: from, limit: limit, budget: budget, classifier: &classifier, into: &page)
            case .done: stop = listDone(filter, from: from, limit: limit, budget: budget, into: &page)
            case .dead: stop = listDead(filter, from: from, limit: limit, budget: budget, into: &page)
            }
            if let stop {
                page.next = stop
                return page
            }
        }
        return page
    }

    /// The unfinished tasks from sequence `from` on; the cursor to stop at, or `nil` when the
    /// part is gone through.
    private func listLive(_ filter: ListingFilter, from: UInt64, limit: Int, budget: Int,
                          classifier: inout ReservedClassifier, into page: inout ListingPage) -> ListingCursor? {
        var index = live.firstIndex(atOrAfter: from)
        while index < live.count {
            let task = live[index]
            if page.tasks.count >= limit || page.examined >= budget { return ListingCursor(.live, task.sequence) }
            index += 1
            // The cheap checks first: a running task another filter leaves out is not sorted.
            guard !task.isDone, keeps(task, filter, time: task.acceptedAt) else {
                page.examined += 1
                continue
            }
            let listed: TaskListState
            switch task.phase {
            case .done: continue
            case .queued: listed = .queued
            case .delayed: listed = .scheduled
            case .running:
                guard filter.wants(.running) || filter.wants(.reserved), let key = task.holder, let consumer = consumers[key] else {
                    listed = .running
                    break
                }
                let cost = classifier.cost(of: consumer)
                if cost > 0, page.examined > 0, page.examined + cost + 1 > budget { return ListingCursor(.live, task.sequence) }
                page.examined += cost
                listed = classifier.isReserved(task, on: consumer, records: records) ? .reserved : .running
            }
            page.examined += 1
            guard filter.wants(listed) else { continue }
            var summary = summary(of: task, as: listed)
            if let key = task.holder {
                summary.consumer = consumers[key].map { "\($0.info.host):\($0.info.pid)" } ?? PeerAccess.identityText(key)
            }
            page.tasks.append(summary)
        }
        return nil
    }

    /// The kept results from position `from` on.
    private func listDone(_ filter: ListingFilter, from: UInt64, limit: Int, budget: Int,
                          into page: inout ListingPage) -> ListingCursor? {
        var position = max(Int(clamping: from), results.startPosition)
        while position < results.endPosition {
            if page.tasks.count >= limit || page.examined >= budget { return ListingCursor(.done, UInt64(position)) }
            let (task, finishedAt) = results[position: position]
            position += 1
            page.examined += 1
            // A result whose id a revived dead letter took over is no longer the task's.
            guard let stored = task.result, records[task.id] === task else { continue }
            let listed = TaskListState(finishedWith: stored.status)
            guard filter.wants(listed), keeps(task, filter, time: finishedAt) else { continue }
            var summary = summary(of: task, as: listed)
            summary.updatedAt = milliseconds(finishedAt)
            summary.status = stored.status.rawValue
            if stored.status != .ok {
                let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(stored.body))
                summary.error = String((body?.error ?? String(decoding: stored.body.prefix(300), as: UTF8.self)).prefix(300))
                summary.kind = body?.kind
            }
            page.tasks.append(summary)
        }
        return nil
    }

    /// The dead letters numbered `from` and later.
    private func listDead(_ filter: ListingFilter, from: UInt64, limit: Int, budget: Int,
                          into page: inout ListingPage) -> ListingCursor? {
        let letters = deadLetters.letters
        var index = deadLetters.firstIndex(numberedAtLeast: from)
        while index < letters.count {
            let letter = letters[index]
            if page.tasks.count >= limit || page.examined >= budget { return ListingCursor(.dead, letter.number) }
            index += 1
            page.examined += 1
            if let name = filter.name, letter.name != name { continue }
            if let since = filter.since, (letter.at ?? 0) < since { continue }
            page.tasks.append(TaskSummary(
                id: letter.id, name: letter.name, state: .dead, attempts: Int(letter.attempts),
                acceptedAt: letter.acceptedAt.map(milliseconds), updatedAt: letter.at.map(milliseconds),
                producer: PeerAccess.identityText(letter.producer), error: String(letter.reason.prefix(300))))
        }
        return nil
    }

    /// Whether `task` passes the filter's name, owner and time (`time`: the one `since` is about).
    private func keeps(_ task: TaskRecord, _ filter: ListingFilter, time: UInt64) -> Bool {
        if let name = filter.name, task.name != name { return false }
        if let owner = filter.owner, task.submitter != owner { return false }
        if let since = filter.since, time < since { return false }
        return true
    }

    private func summary(of task: TaskRecord, as listed: TaskListState) -> TaskSummary {
        var summary = TaskSummary(id: task.id, name: task.name, state: listed, attempts: Int(task.attempts),
                                  acceptedAt: milliseconds(task.acceptedAt),
                                  producer: task.submitter ?? PeerAccess.identityText(task.producer))
        if listed == .scheduled, let due = dueTime(of: task) { summary.dueAt = milliseconds(due) }
        return summary
    }
}

/// Wall-clock ns as the ms of the wire.
private func milliseconds(_ nanoseconds: UInt64) -> Int64 { Int64(clamping: nanoseconds / 1_000_000) }

/// Sorts a consumer's running tasks into those on its threads and those reserved in its prefetch
/// buffer, for a listing: the rule of ``TaskTable/isReserved(_:)`` (of the tasks a consumer holds,
/// the `threads` dispatched first are running), worked out once per consumer and page rather than
/// once per task.
struct ReservedClassifier {
    /// Per consumer: the dispatch number of the last task on its threads (`.max`: none reserved).
    private var lastRunning: [[UInt8]: UInt64] = [:]

    /// Records looked at to sort `consumer`'s tasks: 0 once done for this page, or when it holds
    /// no more tasks than it has threads (none can be reserved).
    func cost(of consumer: ConsumerRecord) -> Int {
        if lastRunning[consumer.key] != nil { return 0 }
        return consumer.inFlight.count > max(1, consumer.info.threads) ? consumer.inFlight.count : 0
    }

    mutating func isReserved(_ task: TaskRecord, on consumer: ConsumerRecord, records: [String: TaskRecord]) -> Bool {
        let threads = max(1, consumer.info.threads)
        if lastRunning[consumer.key] == nil {
            if consumer.inFlight.count <= threads {
                lastRunning[consumer.key] = .max
            } else {
                // Tasks it holds that have finished meanwhile (timed out) still hold a thread, as
                // in isReserved(_:).
                let numbers = consumer.inFlight.compactMap { records[$0]?.dispatchNumber }.sorted()
                lastRunning[consumer.key] = numbers.count > threads ? numbers[threads - 1] : .max
            }
        }
        return task.dispatchNumber > lastRunning[consumer.key]!
    }
}

/// The two fields of an error body (docs/PROTOCOL.md §6.5).
private struct ErrorBody: Decodable {
    let error: String?
    let kind: String?
}
