@testable import ConveyorBroker
import ConveyorProtocol
import Testing

extension ModelRun {
    /// Lists every task the table holds, in pages of a random size and a random budget, and
    /// checks the listing against the model: each task the model knows listed once, in the
    /// state the model has it in (running and reserved as `isReserved` tells them apart), no
    /// other, the dead letters the model keeps, and every page within its budget.
    mutating func checkListing() -> String? {
        let budget = 1 + Int(rng.below(12))
        let limit = 1 + Int(rng.below(6))
        // A page's one allowed excess: the tasks of the consumer whose running tasks it sorts
        // first (TaskTable.listTasks).
        let mostHeld = engine.table.consumers.consumers.values.map(\.inFlight.count).max() ?? 0
        var cursor: ListingCursor?
        var listed: [String: TaskListState] = [:]
        var dead: [String] = []
        var pages = 0
        while true {
            pages += 1
            if pages > 100_000 { return "the listing does not end (at \(cursor?.text ?? "the start"))" }
            let page = engine.table.listTasks(ListingFilter(), limit: limit, from: cursor, budget: budget)
            if page.tasks.count > limit { return "a page of \(page.tasks.count) tasks; its limit was \(limit)" }
            if page.examined > max(budget, mostHeld + 1) {
                return "a page looked at \(page.examined) records; its budget was \(budget) (a consumer holds \(mostHeld) at most)"
            }
            for task in page.tasks {
                if task.state == .dead {
                    dead.append(task.id)
                } else if listed.updateValue(task.state, forKey: task.id) != nil {
                    return "\(task.id) listed twice"
                }
            }
            guard let next = page.next else { break }
            if page.examined == 0 { return "a page looked at nothing and goes on at \(next.text)" }
            cursor = next
        }
        for (id, task) in model.tasks {
            let expected: TaskListState
            switch task.phase {
            case .waiting: expected = .queued
            case .backoff, .scheduled: expected = .scheduled
            case .held:
                guard let record = engine.table[id] else { return "\(id) is held in the model, unknown to the table" }
                expected = engine.table.isReserved(record) ? .reserved : .running
            case .ended(let status): expected = TaskListState(finishedWith: TaskStatus(wire: status))
            }
            guard let state = listed[id] else { return "\(id) (\(task.phase) in the model) is not listed" }
            if state != expected { return "\(id) is listed \(state); the model has it \(task.phase), so \(expected)" }
        }
        if let stray = listed.keys.first(where: { model.tasks[$0] == nil }) { return "\(stray) is listed; the model let it go" }
        if dead.sorted() != model.deadLetters.map(\.id).sorted() {
            return "dead letters listed \(dead.sorted()); the model keeps \(model.deadLetters.map(\.id).sorted())"
        }
        return nil
    }
}

@Suite("Listing tasks against the reference model")
struct TaskListingModelTests {
    @Test("2,000 random sequences, listed after every step in random pages and budgets: every task once, in the model's state, each page within its budget")
    func listingsAgreeWithTheModel() {
        for seed in 1...UInt64(2_000) {
            var run = ModelRun(seed: seed, faults: [])
            run.checksListings = true
            let length = 8 + Int(run.rng.below(41))
            if let failure = run.run(steps: length) {
                Issue.record("seed \(seed): \(failure)")
                return
            }
        }
    }
}
