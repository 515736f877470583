import ConveyorConsumer
import ConveyorMetrics
import ConveyorProcess

/// `consumer --metrics-listen HOST:PORT` (docs/OBSERVABILITY.md). One process serves its own
/// figures there. With `--processes P`, the supervisor serves HOST:PORT (its children alive and
/// restarted) and child `i` serves HOST:PORT+1+i, so that each process is scraped on its own
/// (with port 0, every process takes any free port and prints it).
enum WorkerMetrics {
    /// Where process `index` of a supervised group listens, given the supervisor's `address`.
    static func childAddress(_ address: String, index: Int) -> String {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), port != 0 else {
            return address
        }
        return String(address[..<colon]) + ":\(port + 1 + index)"
    }

    /// Starts a listener for `endpoints` on `address` and prints where; throws the listener's
    /// error (a bad address, a port in use) for the caller to report.
    static func listen(_ address: String, _ endpoints: any MetricsEndpoints) throws -> MetricsListener {
        let listener = try MetricsListener(address: address, endpoints: endpoints)
        printLine("metrics \(MetricsListener.url(address: address, port: listener.port))")
        return listener
    }
}

/// A consumer process's own series.
struct ConsumerExposition: MetricsEndpoints {
    let monitor: ConsumerMonitor
    let metrics: MetricsRegistry
    let threads: Int

    func exposition() -> String? {
        metrics.gauge("conveyor_consumer_process_threads", "Worker threads of this consumer process.", [], Double(threads))
        metrics.gauge("conveyor_consumer_busy_threads", "Threads running a handler now.", [], Double(monitor.busyThreads))
        metrics.gauge("conveyor_consumer_held_tasks", "Tasks this process holds: running and waiting in its pool.", [], Double(monitor.heldTasks))
        metrics.gauge("conveyor_consumer_registered", "1 while registered with a broker and taking tasks.", [], monitor.isRegistered ? 1 : 0)
        return metrics.text()
    }

    func unhealthy() -> String? {
        monitor.turned(within: 5_000_000_000) ? nil : "the consumer's loop has not turned for 5 s"
    }

    func unready() -> String? {
        monitor.isRegistered ? nil : "not registered with a broker (connecting, or draining)"
    }
}

/// A supervisor's series: its children.
struct SupervisorExposition: MetricsEndpoints {
    let supervisor: Supervisor
    let metrics: MetricsRegistry
    let processes: Int

    func exposition() -> String? {
        metrics.gauge("conveyor_consumer_processes", "Consumer processes this supervisor keeps running.", [], Double(processes))
        metrics.gauge("conveyor_consumer_processes_running", "Consumer processes running now.", [], Double(supervisor.running))
        metrics.counter("conveyor_consumer_restarts_total", "Consumer processes restarted since the supervisor started.",
                        total: supervisor.restarts)
        return metrics.text()
    }

    func unhealthy() -> String? { nil }

    func unready() -> String? {
        supervisor.running > 0 ? nil : "no consumer process is running"
    }
}
