#if DEBUG
/// Bugs the model test must catch (Tests/BrokerTests/TaskTableModelTests.swift).
enum SeededFault: Hashable, Sendable {
    /// A finished task's credit is not given back to its consumer.
    case creditNotReturned
    /// An expired task is finished even when it was already done (a second result).
    case finishTwice
    /// A task released from a lost consumer starts its attempts again from zero.
    case requeueLosesAttempts
    /// A task accepted with a not_before time ahead is routed at once (runs early).
    case scheduledRunsEarly
    /// A task with a uniqueness key does not take it (a second submit makes a second task).
    case uniqueKeyNotHeld
}
#endif
