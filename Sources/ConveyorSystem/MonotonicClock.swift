#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds on the monotonic clock: cheap, never goes back, comparable within one process.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations count as zero).
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    /// The duration in whole milliseconds.
    public var milliseconds: Int { Int(nanoseconds / 1_000_000) }

    /// The duration in seconds, as a `Double`.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}

/// Nanoseconds since the Unix epoch on the wall clock (`CLOCK_REALTIME`): what a task's deadline
/// and not-before times are kept in, because a monotonic clock means nothing to another process
/// or after a restart. It can jump (NTP, an operator): use it for times that must survive the
/// process, the monotonic clock for everything else (heartbeats, liveness, pacing).
@inline(__always)
public func wallClockNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return UInt64(max(0, spec.tv_sec)) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}
