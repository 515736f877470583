public import DequeModule

/// The broker's durable state rebuilt from the journal: every live task, every kept result, the
/// dead letters, the paused task names, limits and schedules. Recovery builds it by replaying the newest snapshot and the segments after it;
/// compaction builds it the same way from sealed files and writes it out as the next snapshot.
/// Replaying a record the state does not expect (a dispatch of an unknown id, say, after a
/// skipped damaged record) is counted and ignored, never a crash.
public struct RecoveredState: Sendable {
    /// Tasks by id, in whatever state they were left.
    public private(set) var tasks: [String: TaskEntry] = [:]
    /// Dead letters, oldest first.
    public private(set) var deadLetters = Deque<DeadLetterEntry>()
    /// Task names paused (`conveyor pause`) and not resumed since.
    public private(set) var paused: Set<String> = []
    /// Global limits by task name (`conveyor limit`), each the JSON of a `NameLimit`.
    public private(set) var limits: [String: [UInt8]] = [:]
    /// Periodic schedules by id (`conveyor schedule add`): the JSON of a `ScheduleSpec` (its
    /// figures as of its last tick) and its args.
    public private(set) var schedules: [String: ScheduleEntry] = [:]
    /// The highest task sequence seen.
    public private(set) var lastSequence: UInt64 = 0
    /// Records applied, and records that referred to something the state does not hold.
    public private(set) var applied = 0
    public private(set) var unmatched = 0

    /// Dead letters kept at most (the broker's capacity): the oldest go first, as in the broker.
    public let deadLetterCapacity: Int

    public init(deadLetterCapacity: Int = .max) { self.deadLetterCapacity = deadLetterCapacity }

    public mutating func apply(_ record: JournalRecord) {
        applied += 1
        switch record {
        case .accepted(var entry):
            // Accepted with its not_before time ahead (its deadline counted from that time): it
            // is scheduled, whether or not the `delayed` record written with it survived a torn
            // tail; a later `queued` record (its promotion) makes it queued.
            if let due = Self.scheduledTime(entry) {
                entry.state = .delayed
                entry.notBefore = due
            }
            tasks[entry.id] = entry
            lastSequence = max(lastSequence, entry.sequence)
        case .task(let entry):
            tasks[entry.id] = entry
            lastSequence = max(lastSequence, entry.sequence)
        case .rerouted(let id, let producer):
            update(id) { $0.producer = producer }
        case .dispatched(let id, let attempts):
            update(id) {
                $0.state = .running
                $0.attempts = attempts
            }
        case .queued(let id, let attempts):
            update(id) {
                $0.state = .queued
                $0.attempts = attempts
            }
        case .delayed(let id, let attempts, let notBefore):
            update(id) {
                $0.state = .delayed
                $0.attempts = attempts
                $0.notBefore = notBefore
            }
        case .finished(let id, let result):
            update(id) {
                $0.state = .done
                $0.args = []
                $0.result = result
            }
        case .evicted(let id):
            if tasks.removeValue(forKey: id) == nil { unmatched += 1 }
        case .deadLettered(let letter):
            deadLetters.append(letter)
            if deadLetters.count > deadLetterCapacity { deadLetters.removeFirst() }
        case .owned(let id, let owner):
            update(id) { $0.owner = owner }
        case .paused(let name):
            paused.insert(name)
        case .resumed(let name):
            paused.remove(name)
        case .limit(let name, let json):
            limits[name] = json.isEmpty ? nil : json
        case .schedule(let id, let json, let args):
            schedules[id] = json.isEmpty ? nil : ScheduleEntry(json: json, args: args)
        case .deadLettersTaken(let id):
            if id.isEmpty {
                deadLetters.removeAll()
            } else {
                deadLetters.removeAll { $0.id == id }
            }
        }
    }

    /// When a task of an `accepted` record becomes ready, if that was after its acceptance: its
    /// `not_before` time (wall-clock ns), which its deadline was counted from.
    static func scheduledTime(_ entry: TaskEntry) -> UInt64? {
        guard let milliseconds = entry.options.notBefore else { return nil }
        let due = min(milliseconds, UInt64.max / 2_000_000) &* 1_000_000
        let ready = entry.deadline &- UInt64(entry.options.timeoutMilliseconds) &* 1_000_000
        return ready == due ? due : nil
    }

    private mutating func update(_ id: String, _ change: (inout TaskEntry) -> Void) {
        guard tasks[id] != nil else {
            unmatched += 1
            return
        }
        change(&tasks[id]!)
    }

    /// How many tasks are in each state.
    public var counts: (queued: Int, delayed: Int, running: Int, done: Int) {
        var counts = (queued: 0, delayed: 0, running: 0, done: 0)
        for task in tasks.values {
            switch task.state {
            case .queued: counts.queued += 1
            case .delayed: counts.delayed += 1
            case .running: counts.running += 1
            case .done: counts.done += 1
            }
        }
        return counts
    }

    /// The state as snapshot records: the paused names, limits and schedules (sorted), tasks in arrival order, then the
    /// dead letters in theirs.
    public func snapshotRecords(into encoder: inout JournalEncoder, flush: (inout JournalEncoder) throws(JournalError) -> Void)
        throws(JournalError) {
        for name in paused.sorted() { encoder.paused(name: name) }
        for name in limits.keys.sorted() { encoder.limit(name: name, json: limits[name]!) }
        for id in schedules.keys.sorted() { encoder.schedule(id: id, json: schedules[id]!.json, args: schedules[id]!.args) }
        for task in tasks.values.sorted(by: { $0.sequence < $1.sequence }) {
            encoder.task(task)
            if let owner = task.owner { encoder.owned(id: task.id, owner: owner) }
            if encoder.bytes.count >= 1 << 20 { try flush(&encoder) }
        }
        for letter in deadLetters {
            encoder.deadLetter(letter)
            if encoder.bytes.count >= 1 << 20 { try flush(&encoder) }
        }
        try flush(&encoder)
    }
}

/// A schedule as the journal keeps it: its `ScheduleSpec` JSON and its args.
public struct ScheduleEntry: Sendable, Equatable {
    public var json: [UInt8]
    public var args: [UInt8]

    public init(json: [UInt8], args: [UInt8]) {
        self.json = json
        self.args = args
    }
}
