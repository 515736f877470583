import ConveyorSystem
import Logging
import Synchronization
import ZeroMQ

/// The clients file in force, shared by the thread that answers ZAP requests and the one that
/// reloads it on SIGHUP.
final class AllowListHolder: Sendable {
    private let list: Mutex<AllowList>

    init(_ list: AllowList) { self.list = Mutex(list) }

    var current: AllowList { list.withLock { $0 } }

    func replace(with list: AllowList) { self.list.withLock { $0 = list } }
}

/// The broker's ZAP policy (docs/SECURITY.md): which CURVE client keys may connect to which
/// socket, and under which identity. A key on the clients file connects to the frontend when it
/// has the `submit` or `admin` role, to the backend when it has `consume`; its name becomes the
/// connection's `User-Id`, its roles and task names ZAP metadata, and the connection gets a number
/// of its own. Everything else is refused (status 400) and logged, rate-limited, with the key.
///
/// Runs on the broker's guard thread only (``BrokerGuard``); no sockets.
final class ClientAuthenticator {
    /// The ZAP domains the broker gives its two sockets.
    static let frontendDomain = "conveyor-frontend"
    static let backendDomain = "conveyor-backend"

    private let allowList: AllowListHolder
    private let logger: Logger
    private var refusedLog = RateLimitedLog(interval: 1_000_000_000)
    private var nextConnection: UInt64 = 1
    /// Where refused handshakes are counted, for `STATS`.
    private let counters: ConnectionCounters

    init(allowList: AllowListHolder, logger: Logger, counters: ConnectionCounters) {
        self.allowList = allowList
        self.logger = logger
        self.counters = counters
    }

    func decide(_ request: ZAPRequest) -> ZAPReply {
        let side: BrokerSide
        switch request.domain {
        case Self.frontendDomain: side = .frontend
        case Self.backendDomain: side = .backend
        default: return refuse(request, key: request.curveClientKey, "a socket this broker does not authenticate (ZAP domain '\(request.domain)')")
        }
        guard let key = request.curveClientKey else {
            return refuse(request, key: nil, "not a CURVE handshake (\(request.mechanism)); this broker takes CURVE clients only")
        }
        guard let entry = allowList.current[key] else {
            return refuse(request, key: key, "key not on the clients file")
        }
        let needed: Roles = side == .frontend ? [.submit, .admin] : .consume
        guard !entry.roles.isDisjoint(with: needed) else {
            let socket = side == .frontend ? "frontend (producers; needs submit or admin)" : "backend (consumers; needs consume)"
            return refuse(request, key: key, "'\(entry.name)' has the roles \(entry.roles) and may not connect to the \(socket)")
        }
        let number = nextConnection
        nextConnection += 1
        return ZAPReply(status: .success, text: "OK", userID: entry.name,
                        properties: AccessProperty.properties(for: entry, connection: number))
    }

    private func refuse(_ request: ZAPRequest, key: [UInt8]?, _ reason: String) -> ZAPReply {
        counters.refusedHandshakes.add(1, ordering: .relaxed)
        refusedLog.log(logger, "client refused", metadata: [
            "reason": "\(reason)", "client.key": "\(key.flatMap { try? Z85.encode($0) } ?? "-")",
            "client.address": "\(request.address)", "socket": "\(request.domain)",
        ])
        return ZAPReply(status: .failure, text: reason)
    }
}
