/// What one producer identity, or one task name, holds of the broker's queue bounds
/// (`--max-queued`, `--max-queued-bytes`), so that no one of them can take more than its share
/// (``Shares/fraction``). docs/ARCHITECTURE.md ("The dispatch rule and fair shares") states the rule.
///
/// Every task record refers to two accounts, its owner's (the producer identity that submitted
/// it) and its name's; ``TaskTable`` keeps the counts in the same transitions that move the task,
/// so they cannot drift from the records. Owned by the broker thread.
final class ShareAccount {
    /// The producer identity, or the task name's bytes: the account's key in ``Shares``.
    let key: [UInt8]
    /// Tasks not yet done that refer to this account: once none does, the account is dropped.
    var live = 0
    /// Tasks queued or waiting out a backoff: what `--max-queued` counts.
    var held = 0
    /// Bytes of args of tasks not yet done: what `--max-queued-bytes` counts.
    var bytes = 0

    init(key: [UInt8]) { self.key = key }
}

/// The accounts of the producer identities and task names that hold tasks.
struct Shares {
    /// By producer identity (today the routing id a task was submitted from).
    private(set) var producers: [[UInt8]: ShareAccount] = [:]
    private(set) var names: [String: ShareAccount] = [:]
    /// The accounts last looked up: most tasks in a row come from one producer, with one name,
    /// and comparing a few bytes is cheaper than hashing them.
    private var lastProducer: ShareAccount?
    private var lastName: (name: String, account: ShareAccount)?

    /// One identity's (or name's) share of `bound` at `percent` (``BrokerConfiguration/queueShare``):
    /// at least 1.
    static func share(of bound: Int, percent: Int) -> Int {
        max(1, Int((Int64(bound) * Int64(min(max(percent, 1), 100))) / 100))
    }

    /// The account of producer identity `key`, created if new.
    mutating func producer(_ key: [UInt8]) -> ShareAccount {
        if let last = lastProducer, last.key == key { return last }
        let account = producers[key] ?? ShareAccount(key: key)
        if account.live == 0 { producers[key] = account }
        lastProducer = account
        return account
    }

    mutating func name(_ name: String) -> ShareAccount {
        if let last = lastName, last.name == name { return last.account }
        let account = names[name] ?? ShareAccount(key: Array(name.utf8))
        if account.live == 0 { names[name] = account }
        lastName = (name, account)
        return account
    }

    /// A task that is not done refers to these accounts from now on.
    static func adopt(_ task: TaskRecord, held: Bool) {
        // Both accounts by hand: an array of the two would cost an allocation per task.
        let owner = task.owner, name = task.nameShare, bytes = task.args.count, counted = held ? 1 : 0
        owner.live += 1
        owner.bytes += bytes
        owner.held += counted
        name.live += 1
        name.bytes += bytes
        name.held += counted
    }

    /// The task is done: its accounts let it go, and are dropped once nothing refers to them.
    mutating func release(_ task: TaskRecord) {
        task.owner.live -= 1
        task.owner.bytes -= task.args.count
        task.nameShare.live -= 1
        task.nameShare.bytes -= task.args.count
        if task.owner.live == 0, producers[task.owner.key] === task.owner {
            producers[task.owner.key] = nil
            if lastProducer === task.owner { lastProducer = nil }
        }
        if task.nameShare.live == 0, names[task.name] === task.nameShare {
            names[task.name] = nil
            if lastName?.account === task.nameShare { lastName = nil }
        }
    }

    /// What a producer identity and a task name hold now (tasks queued or delayed, bytes of args).
    func held(by key: [UInt8]) -> (tasks: Int, bytes: Int) {
        if let last = lastProducer, last.key == key { return (last.held, last.bytes) }
        return producers[key].map { ($0.held, $0.bytes) } ?? (0, 0)
    }

    func held(named name: String) -> (tasks: Int, bytes: Int) {
        if let last = lastName, last.name == name { return (last.account.held, last.account.bytes) }
        return names[name].map { ($0.held, $0.bytes) } ?? (0, 0)
    }
}
