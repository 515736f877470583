import ConveyorBroker
import ConveyorMetrics
import ConveyorProtocol

/// What `broker --metrics-listen` serves (docs/OBSERVABILITY.md lists every series). Per-name
/// counters and latency histograms come from the broker's own recording through swift-metrics
/// into `metrics`; everything else is copied at scrape time from the snapshot the broker publishes
/// once a second, so a scrape costs the broker's thread nothing.
struct BrokerExposition: MetricsEndpoints {
    let monitor: BrokerMonitor
    let metrics: MetricsRegistry

    func exposition() -> String? {
        guard let stats = monitor.statistics else { return nil }
        let held = monitor.heldByName
        let m = metrics
        // Every name with tasks in any of the three, in each of them (0 where it has none).
        let names = Set(stats.queued.keys).union(held.running.keys).union(held.reserved.keys)
        func byName(_ counts: [String: Int]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: names.map { ($0, Double(counts[$0] ?? 0)) })
        }
        m.gauges("conveyor_tasks_queued", "Tasks waiting for a consumer, by task name.", label: "name", byName(stats.queued))
        m.gauges("conveyor_tasks_running", "Tasks on a consumer's thread, by task name.", label: "name", byName(held.running))
        m.gauges("conveyor_tasks_reserved", "Tasks in a consumer's prefetch buffer, not started, by task name.", label: "name",
                 byName(held.reserved))
        m.gauges("conveyor_oldest_queued_task_age_seconds", "Age of the oldest waiting task, by task name (for autoscalers).",
                 label: "name", stats.oldestQueuedAge ?? [:])
        m.gauge("conveyor_tasks_queued_all", "Tasks waiting for a consumer, in all.", [], Double(stats.queuedTotal))
        m.gauge("conveyor_tasks_delayed", "Tasks waiting out a retry backoff.", [], Double(stats.delayed ?? 0))
        m.gauge("conveyor_tasks_scheduled", "Tasks waiting for their not_before time.", [], Double(stats.scheduled ?? 0))
        m.gauge("conveyor_results_kept", "Results kept for status and resubmissions.", [], Double(stats.resultsKept))
        m.gauge("conveyor_dead_letters", "Dead letters held.", [], Double(stats.deadLetterTotal))
        m.gauge("conveyor_consumers", "Consumer processes connected.", [], Double(stats.consumers.count))
        m.gauge("conveyor_consumer_threads", "Worker threads of the connected consumers.", [],
                Double(stats.consumers.reduce(0) { $0 + $1.threads }))
        m.gauge("conveyor_consumer_free_credit", "Tasks the consumers may still be sent.", [],
                Double(stats.consumers.reduce(0) { $0 + $1.freeCredit }))
        m.gauge("conveyor_consumers_quarantined", "Consumers sent nothing because their leases keep running out.", [],
                Double(stats.consumers.filter { $0.quarantined == true }.count))
        m.gauge("conveyor_producers", "Producers heard from within the result retention.", [], Double(stats.producers))
        m.gauge("conveyor_tasks_completed_per_second", "Results made per second over the last 60 s.", [], stats.completedRate60s ?? 0)
        m.gauge("conveyor_broker_longest_turn_seconds", "The broker thread's longest loop turn since it started.", [],
                (stats.longestTurnEverMilliseconds ?? 0) / 1000)
        m.gauge("conveyor_broker_uptime_seconds", "Seconds since the broker started.", [], stats.uptime ?? 0)
        m.gauge("conveyor_connections", "TCP connections open on both sockets.", [], Double(stats.security?.connections ?? 0))
        m.counter("conveyor_messages_dropped_total", "Messages dropped as malformed or duplicate since the broker started.",
                  [("reason", "malformed")], total: stats.totals.badMessages)
        m.counter("conveyor_messages_dropped_total", "Messages dropped as malformed or duplicate since the broker started.",
                  [("reason", "duplicate")], total: stats.totals.duplicatesDropped)
        if let journal = stats.journal {
            m.gauge("conveyor_journal_size_bytes", "The journal's segments and snapshots on disk.", [], Double(journal.sizeBytes))
            m.counter("conveyor_journal_records_total", "Journal records written since the broker started.", total: journal.records)
            m.counter("conveyor_journal_written_bytes_total", "Journal bytes written since the broker started.", total: journal.bytesWritten)
            m.counter("conveyor_journal_fsyncs_total", "fsync calls of the journal since the broker started.", total: journal.fsyncs)
            m.gauge("conveyor_journal_write_failing", "1 while the journal cannot write (new tasks are refused).", [],
                    journal.writeFailure == nil ? 0 : 1)
        }
        return m.text()
    }

    func unhealthy() -> String? {
        monitor.turned(within: 5_000_000_000) ? nil : "the broker's loop has not turned for 5 s"
    }

    func unready() -> String? {
        monitor.isReady ? nil : "starting, recovering its journal, or draining"
    }
}
