import ArgumentParser
import ConveyorProtocol
import Foundation

struct TaskOptionFlags: ParsableArguments {
    @Option(help: "Seconds the task may take from when it is ready to run (its submission, or its --delay/--at time) to its result, queueing included.")
    var timeout: Double = 300

    @Option(help: "Priority: higher runs first.")
    var priority: Int32 = 0

    @Option(help: "Attempts in all (retries after a handler failure, with backoff).")
    var attempts: UInt32 = 1

    @Option(help: "Milliseconds before the first retry; doubles each time.")
    var retryBackoffMs: UInt32 = 1000

    @Flag(help: "Refuse the task at once when no connected consumer serves its name (instead of a warning and a wait for one).")
    var requireConsumer = false

    @Flag(help: "Cancel the task while it waits if this producer goes away (exits, is killed, loses its connection for 4 s). Not with --no-wait, which goes away at once.")
    var cancelOnDisconnect = false

    @Option(help: ArgumentHelp(
        "A W3C trace context traceparent for the task (00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>): its handler gets it, and the consumer logs its trace id (trace.id) with the task.",
        valueName: "traceparent"))
    var traceparent: String?

    @Option(help: ArgumentHelp("The W3C tracestate that goes with --traceparent (at most 512 bytes).", valueName: "tracestate"))
    var tracestate: String?

    @Option(help: ArgumentHelp(
        "POST the task's result to this http(s) URL when it ends, signed (Standard Webhooks): a conveyor gateway serves the delivery (docs/GATEWAY.md).",
        valueName: "url"))
    var callbackURL: String?

    @Option(help: ArgumentHelp(
        "Run the task no earlier than this many seconds from now (0 to 31622400, a year): until then it is scheduled (`conveyor status` says when it is due; `conveyor cancel` takes it back). Its --timeout counts from then. Not with --at.",
        valueName: "seconds"))
    var delay: Double?

    @Option(help: ArgumentHelp(
        "Run the task no earlier than this time: ISO 8601 with its zone, such as 2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00 (a time without a zone is refused). A time past is ready at once; at most a year ahead. Not with --delay.",
        valueName: "time"))
    var at: String?

    @Option(help: ArgumentHelp(
        "A uniqueness key (1-255 bytes of visible ASCII): while a task of the same name with this key is queued, scheduled, running, or finished less than --unique-ttl ago, this submit makes no new task and gets that task's id and result.",
        valueName: "key"))
    var uniqueKey: String?

    @Option(help: ArgumentHelp(
        "Seconds a finished task keeps its --unique-key (default 0: only while it is not finished; at most 4000000).",
        valueName: "seconds"))
    var uniqueTtl: Double?

    /// The longest --delay, in seconds (``TaskOptions/maxDelayMilliseconds``).
    static let maxDelaySeconds = Double(TaskOptions.maxDelayMilliseconds / 1000)

    func validate() throws {
        if let callbackURL, let problem = Webhook.problem(callbackURL: callbackURL) {
            throw ValidationError("--callback-url: \(problem)")
        }
        guard timeout > 0, timeout <= 4_000_000 else { throw ValidationError("--timeout must be between 0 and 4000000 seconds") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
        if delay != nil, at != nil { throw ValidationError("--delay and --at both say when the task runs: give one of them") }
        if let delay, !(delay >= 0 && delay <= Self.maxDelaySeconds) {
            throw ValidationError("--delay must be from 0 to \(Int(Self.maxDelaySeconds)) seconds (a year), not \(delay)")
        }
        if let at {
            let date = try Self.parseTime(at)
            if date.timeIntervalSinceNow > Self.maxDelaySeconds {
                throw ValidationError("--at \(at) is more than a year ahead; the broker takes tasks at most \(TaskOptions.maxDelayMilliseconds / 86_400_000) days ahead")
            }
        }
        if uniqueTtl != nil, uniqueKey == nil {
            throw ValidationError("--unique-ttl says how long a finished task keeps its --unique-key: give --unique-key too")
        }
        if let uniqueTtl, !(uniqueTtl >= 0 && uniqueTtl <= 4_000_000) {
            throw ValidationError("--unique-ttl must be from 0 to 4000000 seconds, not \(uniqueTtl)")
        }
        if let uniqueKey, uniqueKey.isEmpty || uniqueKey.utf8.count > 255 || !uniqueKey.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw ValidationError("--unique-key must be 1-255 bytes of visible ASCII (no spaces), as task ids are")
        }
        if let problem = options.problem { throw ValidationError("--\(problem)") }
    }

    /// `text` as an ISO 8601 time with a zone (`Z` or `±hh:mm`), fractions of a second allowed.
    static func parseTime(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        let zoned = text.hasSuffix("Z") || text.hasSuffix("z") || text.range(of: #"[+-]\d\d:?\d\d$"#, options: .regularExpression) != nil
        if !zoned, text.contains("T") || text.contains(":") {
            throw ValidationError("--at \(text) has no time zone: write it in UTC with Z (2026-12-24T18:00:00Z) or with its offset (2026-12-24T19:00:00+01:00)")
        }
        throw ValidationError("--at \(text) is not an ISO 8601 time: write it as 2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00")
    }

    /// The not_before time (ms since the epoch) the flags ask for, counted from now for --delay.
    var notBefore: UInt64? {
        if let delay { return UInt64(((Date().timeIntervalSince1970 + delay) * 1000).rounded(.down)) }
        if let at, let date = try? Self.parseTime(at) { return UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down))) }
        return nil
    }

    var options: TaskOptions {
        TaskOptions(timeoutMilliseconds: UInt32(timeout * 1000), priority: priority, maxAttempts: attempts,
                    retryBackoffMilliseconds: retryBackoffMs, cancelOnDisconnect: cancelOnDisconnect,
                    requireConsumer: requireConsumer, traceparent: traceparent, tracestate: tracestate,
                    callbackURL: callbackURL, notBefore: notBefore, uniqueKey: uniqueKey,
                    uniqueTTLMilliseconds: UInt32((uniqueTtl ?? 0) * 1000))
    }
}
