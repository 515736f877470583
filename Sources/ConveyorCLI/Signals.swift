import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT and SIGTERM into a callback (on a dispatch queue, not in a signal handler).
enum TerminationSignals {
    // nonisolated(unsafe): written only by install(), which commands call once from the main
    // thread before any other thread could read it; it only keeps the sources alive.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Calls `handler` with the signal number each time SIGINT or SIGTERM arrives.
    static func install(_ handler: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
    }
}
