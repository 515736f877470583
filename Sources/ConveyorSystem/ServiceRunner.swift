public import Logging
import Synchronization
public import ServiceLifecycle

/// How the `conveyor` commands (and apps like examples/thumbnail-consumer) run their services.
public enum ConveyorServices {
    /// Runs `services` in one `ServiceGroup` whose graceful shutdown SIGINT and SIGTERM trigger.
    ///
    /// The signals are taken by ``TerminationSignals`` (started first thing in `main`, so that a
    /// signal that comes before the group runs is not lost; started here too when it was not), not
    /// by the group's own signal handling. Every signal asks for a graceful shutdown again, which
    /// is harmless.
    ///
    /// - Parameters:
    ///   - again: called on every signal after the first (a second SIGTERM: "stop now").
    ///   - started: called once the group is about to run, e.g. to print what was bound.
    public static func run(
        _ services: [any Service],
        logger: Logger,
        started: @Sendable (ServiceGroup) async throws -> Void = { _ in },
        again: (@Sendable () -> Void)? = nil
    ) async throws {
        TerminationSignals.start()
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            logger: logger))
        let signals = Atomic<Int>(0)
        TerminationSignals.install { _ in
            if signals.add(1, ordering: .relaxed).newValue > 1, let again { again() }
            Task { await group.triggerGracefulShutdown() }
        }
        // A signal after the group has finished ends the process, as it would without a group.
        defer { TerminationSignals.install(nil) }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await started(group)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            try await tasks.waitForAll()
        }
    }
}
