/// Webhook callbacks (docs/GATEWAY.md, "Webhook callbacks"): a task submitted with a
/// ``TaskOptions/callbackURL`` gets, when it ends, a delivery task of the reserved name
/// ``taskName`` that the broker creates itself, journaled before the record that finishes the
/// task in the same group commit, so a delivery exists exactly when the task's end does (a torn
/// journal tail that kept the delivery but lost the end drops the delivery at recovery; the task
/// runs again and makes it again). Deliveries inherit the broker's durability, retries and dead
/// letters; consumers with the `gateway` role serve them.
public enum Webhook {
    /// The name of delivery tasks. Names starting with ``reservedPrefix`` are the broker's: a
    /// producer's task of such a name is rejected.
    public static let taskName = "conveyor.webhook"
    public static let reservedPrefix = "conveyor."
    /// The longest callback URL, in bytes.
    public static let maxURLBytes = 2_048

    /// A delivery task's options: tried 8 times, 5 s after the first failure and doubling
    /// (5, 10, 20, 40, 80, 160, 320 s: about 10 minutes of retries), then a dead letter; a day in all.
    public static let deliveryOptions = TaskOptions(
        timeoutMilliseconds: 86_400_000, maxAttempts: 8, retryBackoffMilliseconds: 5_000)

    /// Why `url` cannot be a callback URL (not `http://` or `https://` with a host, too long, not
    /// visible ASCII); `nil` when it can. Where it may point (the gateway's allow-list) is checked
    /// by the gateway, at submit and again at delivery.
    public static func problem(callbackURL url: String) -> String? {
        let bytes = Array(url.utf8)
        guard !bytes.isEmpty, bytes.count <= maxURLBytes else {
            return "callback_url must be 1-\(maxURLBytes) bytes, not \(bytes.count)"
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return "callback_url must be visible ASCII (percent-encode the rest)"
        }
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") { rest = url.dropFirst(8) }
        else if lower.hasPrefix("http://") { rest = url.dropFirst(7) }
        else { return "callback_url must start with http:// or https://" }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        guard !host.isEmpty, !host.hasPrefix(":") else { return "callback_url has no host" }
        return nil
    }

    /// Whether a producer may submit a task named `name` (reserved names are the broker's).
    public static func isReserved(_ name: String) -> Bool { name.hasPrefix(reservedPrefix) }

    /// The id of the delivery of the task accepted as number `sequence`: unique per broker, and
    /// the same when a recovery makes it again.
    public static func deliveryID(sequence: UInt64) -> String { "\(taskName).\(sequence)" }

    /// The word a delivery's body gives for a task's end.
    public static func statusWord(_ status: TaskStatus) -> String {
        switch status {
        case .ok: "succeeded"
        case .error: "failed"
        case .timeout: "timed_out"
        case .cancelled: "cancelled"
        case .rejected: "rejected"
        case .unrecognized: "unrecognized"
        }
    }

    /// A delivery task's args, as JSON text: `{"url", "parent", "sequence", "event"}`, where
    /// `event` is the body the gateway POSTs: `{"id", "name", "status", "result" | "error",
    /// "worker", "attempts", "finished_at"}`. `body` and `info` are the result's frames (JSON);
    /// `finishedAt` is wall-clock ns.
    public static func deliveryArgs(url: String, id: String, name: String, sequence: UInt64, status: TaskStatus,
                                    body: [UInt8], info: [UInt8], attempts: UInt32, finishedAt: UInt64) -> [UInt8] {
        var event = "{\"id\":\(JSONText.quoted(id)),\"name\":\(JSONText.quoted(name)),\"status\":\"\(statusWord(status))\","
        let bodyText = body.isEmpty ? "null" : String(decoding: body, as: UTF8.self)
        event += status == .ok ? "\"result\":\(bodyText)," : "\"error\":\(bodyText),"
        let infoText = info.isEmpty ? "null" : String(decoding: info, as: UTF8.self)
        event += "\"worker\":\(infoText),\"attempts\":\(attempts),\"finished_at\":\(JSONText.quoted(iso8601(nanoseconds: finishedAt)))}"
        let args = "{\"url\":\(JSONText.quoted(url)),\"parent\":\(JSONText.quoted(id)),\"sequence\":\(sequence),\"event\":\(event)}"
        return Array(args.utf8)
    }

    /// `2026-12-02T12:00:00.123Z` for wall-clock ns since the Unix epoch (UTC, milliseconds).
    public static func iso8601(nanoseconds: UInt64) -> String {
        let milliseconds = nanoseconds / 1_000_000
        let seconds = Int64(milliseconds / 1_000)
        let days = seconds / 86_400
        let secondOfDay = seconds % 86_400
        // Civil from days (Howard Hinnant's algorithm), days since 1970-01-01.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = milliseconds % 1_000
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3_600)):\(two(secondOfDay % 3_600 / 60)):\(two(secondOfDay % 60)).\(fraction)Z"
    }
}
