import CoreMetrics

extension TaskTable {
    /// Counts `outcome` of `task`: in the STATS totals and, when metrics are on, in
    /// `conveyor_tasks_total{name,status}`. Every place that changes a total goes through here,
    /// so the two always agree.
    mutating func tally(_ outcome: TaskOutcome, _ task: TaskRecord) {
        switch outcome {
        case .submitted: totals.submitted += 1
        case .succeeded: totals.succeeded += 1
        case .failed: totals.failed += 1
        case .timedOut: totals.timedOut += 1
        case .cancelled: totals.cancelled += 1
        case .rejected: totals.rejected += 1
        case .retried: totals.retried += 1
        case .requeued: totals.requeued += 1
        case .deadLettered: break  // STATS counts dead letters held, not dead-letterings
        }
        meter(of: task)?.count(outcome)
    }

    /// A task refused before it became a record: counted as rejected under `name`.
    mutating func tallyRejected(name: String) {
        totals.rejected += 1
        metrics?.meter(name).count(.rejected)
    }

    /// The task's name meter, looked up once per record (whichever way the record was made:
    /// accepted, rebuilt from the journal, revived from the dead letters); `nil` when metrics are off.
    func meter(of task: TaskRecord) -> NameMeter? {
        guard let metrics else { return nil }
        if let meter = task.meter { return meter }
        let meter = metrics.meter(task.name)
        task.meter = meter
        return meter
    }
}
