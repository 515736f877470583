import TestSupport
@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// Drives the broker's state machine (through ``BrokerEngine``, from decoded messages, as the
/// socket loop does) with random event sequences, and checks every step against
/// ``ReferenceModel``: where each task stands, which consumer holds what, every dispatch (to a
/// live consumer serving the name, within its credit, with the right attempt number), every
/// result (exactly the ones the model expects, each once), and that no task waits while a
/// consumer that serves it has a free thread.
struct ModelRun {
    var rng: SplitMix64
    let engine: BrokerEngine<RecordingOutbox>
    var model: ReferenceModel
    var wall: UInt64 = 1_700_000_000_000_000_000
    var monotonic: UInt64 = 1_000_000_000
    var nextTask = 0
    var nextConsumer = 0
    let names = ["a", "b", "c"]
    let producers: [[UInt8]] = [[0x50, 1], [0x50, 2]]
    /// The events so far, for the failure message.
    var trace: [String] = []
    /// When set, the table journals and every step checks that replaying the journal gives the
    /// table's state (JournalReplayTests.swift).
    var journalReplay: RecoveredState?
    /// When set, every step also lists the table's tasks in random pages and budgets and checks
    /// them against the model (TaskListingModelTests.swift).
    var checksListings = false

    init(seed: UInt64, faults: Set<SeededFault>) {
        rng = SplitMix64(seed: seed)
        let retention = rng.chance(0.3) ? Int(rng.below(4)) + 1 : 100_000
        let maxQueued = rng.chance(0.3) ? Int(rng.below(4)) + 1 : 1_000_000
        engine = .recording {
            $0.resultRetentionCount = retention
            $0.maxQueued = maxQueued
            // Leases of 3 s (three of the consumers' 1 s heartbeats): some run out between events.
            $0.leaseDuration = .seconds(2)
        }
        engine.table.seededFaults = faults
        model = ReferenceModel(retentionCount: retention, maxQueued: maxQueued, leaseNanos: 2_000_000_000)
    }

    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    var outbox: RecordingOutbox { engine.outbox }

    static func consumerKey(_ n: Int) -> [UInt8] { [0x43, UInt8(n >> 8), UInt8(n & 0xFF)] }

    static func consumerNumber(_ key: [UInt8]) -> Int { Int(key[1]) << 8 | Int(key[2]) }

    /// Runs one sequence; returns the first disagreement, if any.
    mutating func run(steps: Int) -> String? {
        for step in 0..<steps {
            if let problem = self.step() ?? checkJournal() ?? (checksListings ? checkListing() : nil) {
                return "step \(step): \(problem)\n  last events:\n    " + trace.suffix(12).joined(separator: "\n    ")
            }
        }
        // The end: every consumer answers what it holds, then time runs past every deadline.
        for (c, consumer) in model.consumers where consumer.alive {
            for id in consumer.busy.sorted() {
                if let problem = answer(id, by: c, status: "ok") { return "final answers: \(problem)" }
            }
        }
        if let problem = tick(by: 1_000_000_000_000) ?? checkJournal() ?? (checksListings ? checkListing() : nil) {
            return "final tick: \(problem)"
        }
        for (id, task) in model.tasks {
            guard case .ended = task.phase else { return "task \(id) never ended: \(task.phase)" }
        }
        return nil
    }

    private mutating func step() -> String? {
        model.expected.removeAll()
        wall += 1 + rng.below(3_000_000)
        model.now = wall
        monotonic += 1_000_000
        let roll = rng.below(100)
        switch roll {
        case 0..<28: return submitNew()
        case 28..<32: return resubmit()
        case 32..<40: return connect()
        case 40..<45: return updateCapacity()
        case 45..<70:
            let busy = model.consumers.filter { $0.value.alive && !$0.value.busy.isEmpty }.keys.sorted()
            guard let c = rng.pick(busy), let id = rng.pick(model.consumers[c]!.busy.sorted()) else { return tick(by: 1_000_000) }
            return answer(id, by: c, status: rng.pick(["ok", "ok", "error", "retry", "retry", "requeue"])!)
        case 70..<74: return lateOrForged()
        case 74..<80: return disconnect()
        case 80..<82: return silence()
        case 82..<87: return cancel()
        case 87..<89: return reviveDeadLetters()
        case 89..<92: return renew()
        case 92..<94: return pauseOrResume()
        default: return tick(by: rng.below(1_500_000_000))
        }
    }

    // MARK: Events

    private mutating func submitNew() -> String? {
        nextTask += 1
        let id = "t\(nextTask)"
        let name = rng.pick(names)!
        var options = TaskOptions(timeoutMilliseconds: UInt32(50 + rng.below(5000)), maxAttempts: UInt32(1 + rng.below(3)),
                                  retryBackoffMilliseconds: UInt32(1 + rng.below(500)))
        // A quarter of the tasks wait for a not_before time (some of those times already past),
        // a fifth take one of two uniqueness keys, kept up to 3 s after they end.
        if rng.chance(0.25) { options.notBefore = wall / 1_000_000 + rng.below(4_000) - 500 }
        if rng.chance(0.2) {
            options.uniqueKey = rng.pick(["k1", "k2"])!
            options.uniqueTTLMilliseconds = rng.chance(0.5) ? 0 : UInt32(rng.below(3_000))
        }
        let producer = rng.pick(producers)!
        let key = options.uniqueKey.map { name + " " + $0 }
        if let key, let holder = model.uniqueHolder(key) {
            model.waits(id, on: holder)
            send(.submit, from: producer, [Wire.bytes(id), Wire.bytes(name), options.encoded(for: .current), Wire.bytes("{}")])
            if outbox.accepted != [id + " " + holder] {
                return "submit of \(id) with key \(key), held by \(holder): broker answered \(outbox.accepted), rejected \(outbox.rejected.map(\.id))"
            }
            if case .ended = model.tasks[holder]!.phase, !outbox.results.contains(where: { $0.redelivery && $0.id == id + " " + holder }) {
                return "submit of \(id) with key \(key), held by ended \(holder): its result was not sent at once"
            }
            return check()
        }
        let scheduled = options.notBefore.map { $0 * 1_000_000 >= wall } ?? false
        let refused = model.refusesNew(name, from: producer, scheduled: scheduled)
        if !refused {
            model.submit(id, name: name, maxAttempts: options.maxAttempts,
                         timeoutNanos: UInt64(options.timeoutMilliseconds) * 1_000_000,
                         backoffNanos: UInt64(options.retryBackoffMilliseconds) * 1_000_000, from: producer, now: wall,
                         notBefore: options.notBefore, uniqueKey: key,
                         uniqueTTL: UInt64(options.uniqueTTLMilliseconds) * 1_000_000)
        }
        send(.submit, from: producer, [Wire.bytes(id), Wire.bytes(name), options.encoded(for: .current), Wire.bytes("{}")])
        if refused != outbox.rejected.contains(where: { $0.id == id }) {
            return "submit of \(id) ('\(name)'): model \(refused ? "refuses" : "accepts"), broker \(refused ? "accepted" : "rejected")"
        }
        return check()
    }

    private mutating func resubmit() -> String? {
        guard let id = rng.pick(model.tasks.keys.sorted()) else { return submitNew() }
        let task = model.tasks[id]!
        let producer = rng.pick(producers)!
        send(.submit, from: producer, [Wire.bytes(id), Wire.bytes(task.name), [], Wire.bytes("{}")])
        model.resubmitted(id, by: producer)
        let redelivered = outbox.results.filter { $0.redelivery }.map(\.id)
        if case .ended = task.phase {
            if redelivered != [id] { return "resubmitting ended \(id) redelivered \(redelivered)" }
        } else if !redelivered.isEmpty {
            return "resubmitting unfinished \(id) redelivered \(redelivered)"
        }
        return check()
    }

    private mutating func connect() -> String? {
        nextConsumer += 1
        let c = nextConsumer
        let served = Set(names.filter { _ in rng.chance(0.6) })
        let capacity = Int(rng.below(4))
        model.consumers[c] = ReferenceModel.Consumer(capacity: capacity, threads: 1 + Int(rng.below(UInt64(max(1, capacity)))), names: served)
        ready(c, capacity: capacity, names: served.sorted(), update: false)
        return check()
    }

    private mutating func updateCapacity() -> String? {
        guard let c = rng.pick(model.consumers.filter { $0.value.alive }.keys.sorted()) else { return connect() }
        let capacity = Int(rng.below(5))
        model.consumers[c]!.capacity = capacity
        ready(c, capacity: capacity, names: model.consumers[c]!.names.sorted(), update: true)
        return check()
    }

    mutating func answer(_ id: String, by c: Int, status: String) -> String? {
        model.answered(id, by: c, status: status, now: wall)
        if model.consumers[c]?.alive == true { model.refilled(c) }
        send(.done, from: Self.consumerKey(c), [Wire.bytes(id), Wire.bytes(status), Wire.bytes("{}"), Wire.bytes("{}")],
             backend: true)
        return check()
    }

    /// A final result from a consumer that was dropped, or from one that never had the task.
    private mutating func lateOrForged() -> String? {
        guard let id = rng.pick(model.tasks.keys.sorted()), nextConsumer > 0 else { return tick(by: 1_000_000) }
        let c = Int(1 + rng.below(UInt64(nextConsumer)))
        if model.consumers[c]?.alive == true, model.consumers[c]!.busy.contains(id) {
            return answer(id, by: c, status: "ok")
        }
        if model.consumers[c]?.alive == true { return tick(by: 1_000_000) }
        return answer(id, by: c, status: rng.pick(["ok", "error", "retry"])!)
    }

    private mutating func disconnect() -> String? {
        guard let c = rng.pick(model.consumers.filter { $0.value.alive }.keys.sorted()) else { return connect() }
        model.dropped(c)
        send(.disconnect, from: Self.consumerKey(c), [], backend: true)
        return check()
    }

    /// Time passes with no word from some consumers: the broker drops exactly those.
    private mutating func silence() -> String? {
        monotonic += 10_000_000_000
        var silent: [Int] = []
        for c in model.consumers.filter({ $0.value.alive }).keys.sorted() {
            if rng.chance(0.5) {
                send(.heartbeat, from: Self.consumerKey(c), [], backend: true)
            } else {
                silent.append(c)
            }
        }
        return tick(by: 1, dropping: silent)
    }

    /// RENEW from a consumer for some of what it holds, and perhaps an id it does not hold.
    private mutating func renew() -> String? {
        let holding = model.consumers.filter { $0.value.alive && !$0.value.busy.isEmpty }.keys.sorted()
        guard let c = rng.pick(holding) else { return tick(by: 1_000_000) }
        var ids = model.consumers[c]!.busy.sorted().filter { _ in rng.chance(0.7) }
        if rng.chance(0.3), let other = rng.pick(model.tasks.keys.sorted()) { ids.append(other) }
        guard !ids.isEmpty else { return tick(by: 1_000_000) }
        model.renewed(ids, by: c, now: wall)
        send(.renew, from: Self.consumerKey(c), ids.map(Wire.bytes), backend: true)
        return check()
    }

    private mutating func cancel() -> String? {
        // Mostly a held task, so that reserved ones are cancelled too.
        let held = model.tasks.filter { if case .held = $0.value.phase { return true } else { return false } }.keys.sorted()
        let id = (rng.chance(0.6) ? rng.pick(held) : nil) ?? rng.pick(model.tasks.keys.sorted()) ?? "nope"
        let again = model.pendingCancels[id] != nil
        let expected = model.cancel(id, now: monotonic)
        send(.cancel, from: producers[0], [Wire.bytes(id)])
        let reply = outbox.messages.first { $0.command == .cancelReply }.map { String(decoding: $0.body[1], as: UTF8.self) }
        if reply != expected { return "cancel \(id): broker said \(reply ?? "nothing"), model \(expected ?? "nothing yet")" }
        if expected == nil, outbox.revoked.map(\.id) != (again ? [] : [id]) { return "cancel of reserved \(id): REVOKE \(outbox.revoked.map(\.id))" }
        return check()
    }

    private mutating func reviveDeadLetters() -> String? {
        let expected = model.revive(now: wall)
        send(.deadLetters, from: producers[1], [Wire.bytes("requeue"), []])
        let reply = outbox.messages.first { $0.command == .deadLettersReply }.map { String(decoding: $0.body[0], as: UTF8.self) }
        if reply != #"{"action":"requeue","count":\#(expected)}"# {
            return "dead-letter requeue: broker said \(reply ?? "nothing"), model revived \(expected)"
        }
        return check()
    }

    /// An operator pauses or resumes a name (mostly resumes a paused one, so that names are not
    /// paused for most of a run); a resume dispatches its waiting tasks at once.
    private mutating func pauseOrResume() -> String? {
        let name = rng.pick(names)!
        let pause = rng.chance(model.paused.contains(name) ? 0.2 : 0.6)
        let changed = pause ? model.paused.insert(name).inserted : model.paused.remove(name) != nil
        send(.pause, from: producers[1], [Wire.bytes(pause ? "pause" : "resume"), Wire.bytes(name)])
        let reply = outbox.messages.first { $0.command == .pauseReply }.map { String(decoding: $0.body[0], as: UTF8.self) }
        if reply?.contains(#""paused":\#(pause),"changed":\#(changed)"#) != true {
            return "\(pause ? "pause" : "resume") \(name): broker said \(reply ?? "nothing"), model: changed \(changed)"
        }
        return check()
    }

    mutating func tick(by nanoseconds: UInt64, dropping silent: [Int] = []) -> String? {
        wall += nanoseconds
        model.now = wall
        trace.append("tick +\(nanoseconds / 1_000_000) ms" + (silent.isEmpty ? "" : ", consumers \(silent) silent"))
        outbox.clear()
        model.advance(to: wall, dropping: silent)
        engine.tick(now: now)
        // The tick's dispatches first (a task requeued or promoted goes out at once), then the
        // cancels it settled, then everything else.
        if let problem = applyDispatches() { return problem }
        let replies = model.settle(now: monotonic)
        let sent = outbox.messages.filter { $0.command == .cancelReply }.map { String(decoding: $0.body[1], as: UTF8.self) }.sorted()
        if sent != replies { return "cancels settled at the tick: broker said \(sent), model \(replies)" }
        return observe(dispatchesApplied: true)
    }

    // MARK: Plumbing

    private mutating func send(_ command: Command, from key: [UInt8], _ fields: [[UInt8]], backend: Bool = false) {
        trace.append("\(command) from \(key) \(fields.map { String(decoding: $0, as: UTF8.self) })")
        outbox.clear()
        let envelope = Wire.envelope(from: key, command, fields)
        if backend { engine.handleBackend(envelope, now: now) } else { engine.handleFrontend(envelope, now: now) }
    }

    private mutating func ready(_ c: Int, capacity: Int, names: [String], update: Bool) {
        model.refilled(c)
        let info = ReadyInfo(capacity: capacity, tasks: names, host: "model", pid: c, threads: model.consumers[c]?.threads ?? 1,
                             heartbeatMilliseconds: 1000, update: update ? true : nil, capabilities: [Capability.revoke.rawValue])
        let json = try! JSONEncoder().encode(info)
        send(.ready, from: Self.consumerKey(c), [Array(json)], backend: true)
    }

    /// Checks what the last event sent, then the whole state.
    private mutating func check() -> String? {
        let problem = observe()
        model.expected.removeAll()
        return problem
    }

    private mutating func applyDispatches() -> String? {
        for dispatch in outbox.dispatches {
            if let problem = model.dispatched(dispatch.id, to: Self.consumerNumber(dispatch.consumer), attempt: dispatch.attempt,
                                              now: wall) {
                return problem
            }
        }
        return nil
    }

    private mutating func observe(dispatchesApplied: Bool = false) -> String? {
        if !dispatchesApplied, let problem = applyDispatches() { return problem }
        let delivered = outbox.results.filter { !$0.redelivery }.map { "\($0.id)=\($0.status.rawValue)" }.sorted()
        let expected = model.expected.map { "\($0.id)=\($0.status)" }.sorted()
        if delivered != expected { return "results \(delivered); the model expects \(expected)" }
        model.expected.removeAll()
        return compareState()
    }

    private func compareState() -> String? {
        let records = engine.table.records
        for (id, task) in model.tasks {
            guard let record = records[id] else { return "the broker lost \(id) (model: \(task.phase))" }
            let same: Bool
            switch (task.phase, record.state) {
            case (.waiting, .queued), (.backoff, .delayed), (.ended, .done): same = true
            case (.scheduled, .delayed): same = record.isScheduled
            case (.held(let c), .running(let key)): same = key == Self.consumerKey(c)
            default: same = false
            }
            if !same { return "\(id) is \(record.state) in the broker, \(task.phase) in the model" }
            if record.attempts != task.attempts { return "\(id) has \(record.attempts) attempts; model \(task.attempts)" }
        }
        for id in records.keys where model.tasks[id] == nil { return "the broker keeps \(id), which the model let go" }
        for (c, consumer) in model.consumers {
            let record = engine.table.consumers[Self.consumerKey(c)]
            if !consumer.alive {
                if record != nil { return "consumer \(c) was dropped but the broker keeps it" }
                continue
            }
            guard let record else { return "the broker dropped consumer \(c)" }
            if record.inFlight != consumer.busy {
                return "consumer \(c) holds \(record.inFlight.sorted()) in the broker, \(consumer.busy.sorted()) in the model"
            }
        }
        for (id, task) in model.tasks where task.phase == .waiting && model.hasFreeConsumer(for: task.name, except: task.avoiding) {
            let detail = model.consumers.map { c, m in "c\(c): alive \(m.alive) cap \(m.capacity) thr \(m.threads) busy \(m.busy.sorted()) q \(m.quarantined) names \(m.names.sorted()) engine credit \(engine.table.consumers[Self.consumerKey(c)]?.credit ?? -99) inflight \(engine.table.consumers[Self.consumerKey(c)]?.inFlight.sorted() ?? [])" }.joined(separator: "; ")
            return "\(id) ('\(task.name)') waits while a consumer serving it has a free thread [DEBUG \(detail)] avoiding \(String(describing: task.avoiding)) queue \(engine.table.queue.countsByName) state \(engine.table.records[id].map { "\($0.state)" } ?? "nil") trace \(trace.suffix(40).joined(separator: " | "))"
        }
        if engine.table.illegalTransitions > 0 { return "\(engine.table.illegalTransitions) illegal transition(s)" }
        return nil
    }
}

/// A small, fast, seedable generator (SplitMix64), so that a failing sequence can be replayed.
typealias SplitMix64 = TestSupport.SplitMix64

@Suite("Task state machine against a reference model")
struct TaskTableModelTests {
    /// Runs `count` sequences; returns the first failure with its seed, and the transition counts.
    static func explore(count: Int, steps: ClosedRange<Int>, faults: Set<SeededFault> = [], journal: Bool = false)
        -> (failure: String?, transitions: [TaskTransition: Int]) {
        var totals: [TaskTransition: Int] = [:]
        for seed in 1...UInt64(count) {
            var run = ModelRun(seed: seed, faults: faults)
            if journal { run.startJournal() }
            let length = steps.lowerBound + Int(run.rng.below(UInt64(steps.count)))
            let failure = run.run(steps: length)
            for transition in TaskTransition.allCases { totals[transition, default: 0] += run.engine.table.count(of: transition) }
            if let failure { return ("seed \(seed): \(failure)", totals) }
        }
        return (nil, totals)
    }

    @Test("10,000 random sequences: every task ends once, results are delivered once, credit and holdings agree")
    func randomSequences() {
        let (failure, transitions) = Self.explore(count: 10_000, steps: 8...48)
        #expect(failure == nil, "\(failure ?? "")")
        let report = TaskTransition.allCases.map { "\($0): \(transitions[$0] ?? 0)" }.joined(separator: ", ")
        print("task transitions exercised: \(report)")
        for transition in TaskTransition.allCases {
            #expect((transitions[transition] ?? 0) > 0, "\(transition) was never exercised")
        }
    }

    @Test("the model test catches seeded bugs", arguments: [
        SeededFault.creditNotReturned, .finishTwice, .requeueLosesAttempts, .scheduledRunsEarly, .uniqueKeyNotHeld,
    ])
    func seededFaultsAreCaught(fault: SeededFault) {
        let (failure, _) = Self.explore(count: 2_000, steps: 10...80, faults: [fault])
        #expect(failure != nil, "the model test did not notice \(fault)")
        print("seeded \(fault): \(failure ?? "not caught")")
    }
}
