import ConveyorProtocol
import DequeModule
import Foundation

/// The newest tasks that ended without succeeding, at most ``capacity`` (oldest let go first):
/// small entries (an error cut to 300 characters), about 400 bytes each at most.
struct RecentFailures {
    static let capacity = 1_000
    private(set) var entries = Deque<RecentFailure>()
    /// Failures recorded since the start (the list keeps the newest ``capacity``).
    private(set) var total = 0

    /// Whether a task that ended with `status` counts: not `ok`, not `cancelled` (a user's choice).
    static func counts(_ status: TaskStatus) -> Bool {
        status != .ok && status != .cancelled
    }

    mutating func add(id: String, name: String, status: TaskStatus, body: [UInt8], info: [UInt8], at: UInt64, argsBytes: Int?) {
        struct Body: Decodable {
            let error: String?
            let kind: String?
        }
        struct Info: Decodable { let attempts: Int? }
        let decoded = try? JSONDecoder().decode(Body.self, from: Data(body))
        let attempts = (try? JSONDecoder().decode(Info.self, from: Data(info)))?.attempts
        let error = decoded?.error ?? String(decoding: body.prefix(300), as: UTF8.self)
        entries.append(RecentFailure(id: id, name: name, status: status.rawValue, at: Double(at) / 1e9, argsBytes: argsBytes,
                                     attempts: attempts, error: String(error.prefix(300)), kind: decoded?.kind))
        total += 1
        if entries.count > Self.capacity { entries.removeFirst() }
    }

    /// Newest first; only those named `name` when it is not empty.
    func newest(named name: String) -> [RecentFailure] {
        entries.reversed().filter { name.isEmpty || $0.name == name }
    }
}
