import ConveyorProtocol

/// The broker's statistics in the Prometheus text exposition format (version 0.0.4): names and
/// labels as docs/OBSERVABILITY.md lists them, base units (`_seconds`, `_bytes`), counters
/// ending in `_total`. Made from the snapshot the broker publishes once a second, so a scrape costs
/// the broker nothing and the hot path counts nothing extra.
enum PrometheusText {
    static func broker(_ stats: BrokerStatistics) -> String {
        var out = Output()
        out.family("conveyor_tasks_total", .counter, "Tasks by what became of them since the broker started (accepted = submitted).")
        let totals = stats.totals
        for (status, value) in [("submitted", totals.submitted), ("succeeded", totals.succeeded), ("failed", totals.failed),
                                ("timed_out", totals.timedOut), ("cancelled", totals.cancelled), ("rejected", totals.rejected),
                                ("retried", totals.retried), ("requeued", totals.requeued), ("completed", totals.completed)] {
            out.sample("conveyor_tasks_total", ["status": status], Double(value))
        }
        out.family("conveyor_tasks_queued", .gauge, "Tasks waiting for a consumer, by task name.")
        for (name, count) in stats.queued.sorted(by: { $0.key < $1.key }) { out.sample("conveyor_tasks_queued", ["name": name], Double(count)) }
        out.family("conveyor_tasks_queued_all", .gauge, "Tasks waiting for a consumer, in all.")
        out.sample("conveyor_tasks_queued_all", [:], Double(stats.queuedTotal))
        out.family("conveyor_oldest_queued_task_age_seconds", .gauge, "Age of the oldest waiting task, by task name (for autoscalers).")
        for (name, age) in (stats.oldestQueuedAge ?? [:]).sorted(by: { $0.key < $1.key }) {
            out.sample("conveyor_oldest_queued_task_age_seconds", ["name": name], age)
        }
        let reserved = stats.reserved ?? 0
        out.family("conveyor_tasks_running", .gauge, "Tasks on a consumer's thread.")
        out.sample("conveyor_tasks_running", [:], Double(stats.running - reserved))
        out.family("conveyor_tasks_reserved", .gauge, "Tasks in a consumer's prefetch buffer, not started.")
        out.sample("conveyor_tasks_reserved", [:], Double(reserved))
        out.family("conveyor_tasks_delayed", .gauge, "Tasks waiting out a retry backoff.")
        out.sample("conveyor_tasks_delayed", [:], Double(stats.delayed ?? 0))
        out.family("conveyor_results_kept", .gauge, "Results kept for status and resubmissions.")
        out.sample("conveyor_results_kept", [:], Double(stats.resultsKept))
        out.family("conveyor_dead_letters", .gauge, "Dead letters held.")
        out.sample("conveyor_dead_letters", [:], Double(stats.deadLetterTotal))
        out.family("conveyor_consumers", .gauge, "Consumer processes connected.")
        out.sample("conveyor_consumers", [:], Double(stats.consumers.count))
        out.family("conveyor_consumer_threads", .gauge, "Worker threads of the connected consumers.")
        out.sample("conveyor_consumer_threads", [:], Double(stats.consumers.reduce(0) { $0 + $1.threads }))
        out.family("conveyor_consumer_free_credit", .gauge, "Tasks the consumers may still be sent.")
        out.sample("conveyor_consumer_free_credit", [:], Double(stats.consumers.reduce(0) { $0 + $1.freeCredit }))
        out.family("conveyor_consumers_quarantined", .gauge, "Consumers sent nothing because their leases keep running out.")
        out.sample("conveyor_consumers_quarantined", [:], Double(stats.consumers.filter { $0.quarantined == true }.count))
        out.family("conveyor_producers", .gauge, "Producers heard from within the result retention.")
        out.sample("conveyor_producers", [:], Double(stats.producers))
        if let rate = stats.completedRate60s {
            out.family("conveyor_tasks_completed_per_second", .gauge, "Results made per second over the last 60 s.")
            out.sample("conveyor_tasks_completed_per_second", [:], rate)
        }
        if let ever = stats.longestTurnEverMilliseconds {
            out.family("conveyor_broker_longest_turn_seconds", .gauge, "The broker thread's longest loop turn since it started.")
            out.sample("conveyor_broker_longest_turn_seconds", [:], ever / 1000)
        }
        if let uptime = stats.uptime {
            out.family("conveyor_broker_uptime_seconds", .gauge, "Seconds since the broker started.")
            out.sample("conveyor_broker_uptime_seconds", [:], uptime)
        }
        if let connections = stats.security?.connections {
            out.family("conveyor_connections", .gauge, "TCP connections open on both sockets.")
            out.sample("conveyor_connections", [:], Double(connections))
        }
        if let journal = stats.journal {
            out.family("conveyor_journal_size_bytes", .gauge, "The journal's segments and snapshots on disk.")
            out.sample("conveyor_journal_size_bytes", [:], Double(journal.sizeBytes))
            out.family("conveyor_journal_records_total", .counter, "Journal records written since the broker started.")
            out.sample("conveyor_journal_records_total", [:], Double(journal.records))
            out.family("conveyor_journal_written_bytes_total", .counter, "Journal bytes written since the broker started.")
            out.sample("conveyor_journal_written_bytes_total", [:], Double(journal.bytesWritten))
            out.family("conveyor_journal_fsyncs_total", .counter, "fsync calls of the journal since the broker started.")
            out.sample("conveyor_journal_fsyncs_total", [:], Double(journal.fsyncs))
            out.family("conveyor_journal_write_failing", .gauge, "1 while the journal cannot write (new tasks are refused).")
            out.sample("conveyor_journal_write_failing", [:], journal.writeFailure == nil ? 0 : 1)
        }
        return out.text
    }

    enum Kind: String { case counter, gauge }

    struct Output {
        var text = ""

        mutating func family(_ name: String, _ kind: Kind, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
        }

        mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escaped($0.value))\"" }.joined(separator: ",") + "}"
            }
            text += " " + (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)) + "\n"
        }

        static func escaped(_ value: String) -> String {
            value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
    }
}
