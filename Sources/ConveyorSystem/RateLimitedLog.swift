public import Logging

/// Logs at most once per interval, counting what it held back: for warnings that a peer can
/// cause at any rate (bad messages, failed sends).
public struct RateLimitedLog: Sendable {
    public let interval: UInt64
    private var last: UInt64 = 0
    private var suppressed = 0

    /// - Parameter interval: nanoseconds between two lines at most.
    public init(interval: UInt64) { self.interval = interval }

    public mutating func log(_ logger: Logger, _ message: Logger.Message, metadata: Logger.Metadata) {
        let now = monotonicNanoseconds()
        guard now &- last >= interval else {
            suppressed += 1
            return
        }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
        last = now
        suppressed = 0
    }
}
