/// What `STATS` answers, as JSON.
struct BrokerStats: Encodable {
    struct ConsumerStats: Codable {
        let pid: Int
        let host: String
        let process: Int?
        let threads: Int
        let capacity: Int
        let inFlight: Int
        let freeCredit: Int
        let completed: Int
        let tasks: [String]

        enum CodingKeys: String, CodingKey {
            case pid, host, process, threads, capacity, completed, tasks
            case inFlight = "in_flight"
            case freeCredit = "free_credit"
        }
    }

    struct Totals: Codable {
        var submitted = 0
        var completed = 0
        var succeeded = 0
        var failed = 0
        var timedOut = 0
        var cancelled = 0
        var rejected = 0
        var requeued = 0
        var retried = 0
        var duplicatesDropped = 0
        var badMessages = 0

        enum CodingKeys: String, CodingKey {
            case submitted, completed, succeeded, failed, cancelled, rejected, requeued, retried
            case timedOut = "timed_out"
            case duplicatesDropped = "duplicates_dropped"
            case badMessages = "bad_messages"
        }
    }

    let queued: [String: Int]
    let queuedTotal: Int
    let running: Int
    let consumers: [ConsumerStats]
    let producers: Int
    let resultsKept: Int
    let totals: Totals
    let deadLetters: [DeadLetter]
    let deadLetterTotal: Int

    enum CodingKeys: String, CodingKey {
        case queued, running, consumers, producers, totals
        case queuedTotal = "queued_total"
        case resultsKept = "results_kept"
        case deadLetters = "dead_letters"
        case deadLetterTotal = "dead_letter_total"
    }
}
