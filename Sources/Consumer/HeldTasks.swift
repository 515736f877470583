/// The tasks this consumer holds (dispatched to it, their results not sent yet), by id, for the
/// lease renewals: every heartbeat interval while it holds any, the consumer sends RENEW with
/// their ids, and the broker extends their leases (docs/PROTOCOL.md §4.12). A task whose lease
/// runs out is taken back by the broker and given to another consumer. The I/O thread owns it.
struct HeldTasks: Sendable {
    private(set) var ids: Set<String> = []
    private var lastRenewal: UInt64
    /// Off once the broker answered RENEW with ERROR (an older broker, without leases).
    var renewals = true

    init(now: UInt64) { lastRenewal = now }

    mutating func arrived(_ id: String) { ids.insert(id) }

    mutating func answered(_ id: String) { ids.remove(id) }

    /// The ids to renew now (every `interval` ns while any are held), or `nil`.
    mutating func renewalDue(now: UInt64, interval: UInt64) -> [String]? {
        guard renewals, !ids.isEmpty, now &- lastRenewal >= interval else { return nil }
        lastRenewal = now
        return Array(ids)
    }
}
