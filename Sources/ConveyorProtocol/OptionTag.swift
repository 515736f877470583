/// The numbers of the task options (docs/PROTOCOL.md §6.1). A tag on the wire is the number, with
/// ``TaggedFields/criticalBit`` set when the sender needs the broker to understand it.
public enum OptionTag {
    /// u32, milliseconds, > 0. Default 300000.
    public static let timeout: UInt16 = 0x0001
    /// i32. Default 0.
    public static let priority: UInt16 = 0x0002
    /// u32; 0 reads as 1. Default 1.
    public static let maxAttempts: UInt16 = 0x0003
    /// u32, milliseconds. Default 1000.
    public static let retryBackoff: UInt16 = 0x0004

    /// Run at: u64, wall-clock milliseconds since the Unix epoch. The task waits (`scheduled`)
    /// until then; a time in the past is ready at once. Sent critical.
    public static let notBefore: UInt16 = 0x0005
    /// A uniqueness key, 1–255 bytes of visible ASCII: while a task of the same name and key is
    /// held (not finished, or finished less than ``uniqueTTL`` ago), a submit with it is answered
    /// with that task's id instead of making a second task. Sent critical.
    public static let uniqueKey: UInt16 = 0x0006

    // Reserved for the next versions of the broker: a broker of this version does not implement
    // it, so it skips it when sent plain and rejects the task when it is sent critical.

    /// Reserved: the id of the workflow parent (group or chord) the task belongs to. Send critical.
    public static let workflowParent: UInt16 = 0x0007
    /// Cancel the task while it waits once its producer is gone; empty value. Sent critical.
    public static let cancelOnDisconnect: UInt16 = 0x0008
    /// W3C trace context `traceparent`, 55 bytes of ASCII for version 00. Sent plain.
    public static let traceParent: UInt16 = 0x0009
    /// W3C trace context `tracestate`, up to 512 bytes of printable ASCII. Sent plain.
    public static let traceState: UInt16 = 0x000A
    /// Refuse the task when no connected consumer serves its name; empty value. Sent critical.
    public static let requireConsumer: UInt16 = 0x000B
    /// The callback URL, 1–2048 bytes of visible ASCII, `http://` or `https://`. Sent critical.
    public static let callbackURL: UInt16 = 0x000C
    /// u32, milliseconds: how long a finished task keeps its ``uniqueKey`` (default 0: only
    /// while it is not finished). Only with a `unique_key`. Sent critical.
    public static let uniqueTTL: UInt16 = 0x000D
    /// Numbers from here to 0x7FFF are for private use: never assigned by the protocol.
    public static let privateUse: ClosedRange<UInt16> = 0x7000...0x7FFF

    /// The name of a reserved number, for error messages.
    public static func reservedName(_ number: UInt16) -> String? {
        switch number {
        case notBefore: "not_before"
        case uniqueKey: "unique_key"
        case workflowParent: "workflow_parent"
        case cancelOnDisconnect: "cancel_on_disconnect"
        case traceParent: "traceparent"
        case traceState: "tracestate"
        case callbackURL: "callback_url"
        case uniqueTTL: "unique_ttl_ms"
        default: nil
        }
    }
}
