/// Limits on identifiers.
public enum Limits {
    /// Task ids and names are 1–255 bytes of visible ASCII (0x21–0x7E): Swift compares canonically
    /// equivalent Unicode strings as equal, so Unicode ids could collide.
    public static let maxIdentifierBytes = 255
    /// The largest capacity (credit) a consumer may announce in READY.
    public static let maxCapacity = 100_000
    /// A READY body's size at most (its JSON); a larger one is answered with ERROR and not read.
    public static let maxReadyBytes = 65_536
    /// Task names one consumer may serve at most.
    public static let maxServedNames = 1_000
    /// Tasks a consumer is sent before it has answered any: its credit grows by one with each
    /// task it answers, up to its announced capacity (docs/RELIABILITY.md, "Bounds").
    public static let initialCredit = 64
    /// The default cap on one task's args or result (`--max-message-size`).
    public static let defaultMaxMessageSize: Int64 = 16 * 1024 * 1024
    /// Messages that carry groups stop taking more once their packed frame passes this many
    /// bytes, so a message holds many small tasks or one large one.
    public static let packedMessageTarget = 1 << 20
    /// Added to the size cap of a socket's inbound frames (`ZMQ_MAXMSGSIZE`): room for the
    /// packed messages above on top of one task of the largest allowed size.
    public static let packedFrameAllowance: Int64 = 2 << 20
    /// The largest `--max-message-size` the command line takes.
    public static let maxMessageSizeLimit: Int64 = 1 << 30

    /// The cap on a socket's inbound frames (`ZMQ_MAXMSGSIZE`) for a message size: the size plus
    /// ``packedFrameAllowance``, or no cap (-1) where that would overflow.
    public static func frameLimit(forMessageSize size: Int64) -> Int64 {
        let (sum, overflow) = size.addingReportingOverflow(packedFrameAllowance)
        return overflow || size < 0 ? -1 : sum
    }
}
