public import ConveyorProtocol
public import Foundation

extension TaskOptions {
    /// ``notBefore`` as a `Date` (milliseconds are kept; finer parts are cut).
    public var notBeforeDate: Date? {
        get { notBefore.map { Date(timeIntervalSince1970: Double($0) / 1000) } }
        set { notBefore = newValue.map { UInt64(max(0, ($0.timeIntervalSince1970 * 1000).rounded(.down))) } }
    }

    /// These options, to run no earlier than `delay` from now (this machine's clock; the broker
    /// compares the time with its own).
    public func delayed(by delay: Duration) -> TaskOptions {
        var options = self
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        options.notBeforeDate = Date().addingTimeInterval(max(0, seconds))
        return options
    }

    /// These options, to run no earlier than `date`.
    public func notBefore(_ date: Date) -> TaskOptions {
        var options = self
        options.notBeforeDate = date
        return options
    }

    /// These options with a uniqueness key (``uniqueKey``), kept `ttl` after the task finishes.
    public func unique(key: String, ttl: Duration = .zero) -> TaskOptions {
        var options = self
        options.uniqueKey = key
        let milliseconds = Double(ttl.components.seconds) * 1000 + Double(ttl.components.attoseconds) / 1e15
        options.uniqueTTLMilliseconds = UInt32(clamping: Int64(max(0, milliseconds.rounded())))
        return options
    }
}
