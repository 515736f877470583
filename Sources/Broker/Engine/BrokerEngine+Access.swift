import ConveyorProtocol
import Logging
import ZeroMQ

/// Reads who sent the message the broker is handling, from what the ZAP handler attached to its
/// connection. The socket loop's implementation reads the received message's properties; the
/// tests' returns what they set up.
protocol CredentialReader: AnyObject {
    /// The credentials of the connection the message being handled came on, on `side`; `nil`
    /// when it has none.
    func access(on side: BrokerSide) -> PeerAccess?
}

/// Who may do what (docs/SECURITY.md), when clients are authenticated (``credentials`` set):
///
/// | command | needs |
/// | --- | --- |
/// | `SUBMIT` | `submit`, and a task name its `tasks=` allows; a resubmitted id must be its own |
/// | `STATUS`, `CANCEL` | `submit` for its own tasks (or ids the broker does not hold), `admin` for anyone's |
/// | `STATS`, `DEAD_LETTERS`, `PURGE`, `PAUSE`, `SCHEDULE`, `LIMIT` | `admin` |
/// | `TASKS` | `submit` lists its own tasks (no dead letters), `admin` anyone's and the dead letters |
/// | `READY`, `DONE`, `RENEW` (backend) | `consume`; only the task names its `tasks=` allows are registered |
/// | `HELLO`, `HEARTBEAT`, `DISCONNECT` | nothing more than a connection |
///
/// A refused task is `REJECTED` (`refused: …`); any other refused command gets `ERROR`
/// `refused COMMAND[ ID]: …`, naming the role it needs.
extension BrokerEngine {
    /// A producer connection met for the first time (or a routing id now on another connection):
    /// its record, with its credentials. `nil` when an authenticated broker finds none.
    func meetProducer(_ key: [UInt8], connection: UInt64, version: ProtocolVersion, now: BrokerInstant) -> PeerAccess? {
        let access: PeerAccess
        if let credentials {
            guard connection != 0, let read = credentials.access(on: .frontend) else { return nil }
            access = read
            if let previous = producers[key], previous.identity != access.identity {
                logger.warning("a producer's routing id was taken over by another identity", metadata: [
                    "identity": "\(access.identity)", "identity.previous": "\(previous.identity)",
                ])
            }
            logger.debug("producer connected", metadata: ["identity": "\(access.identity)", "roles": "\(access.roles)"])
        } else {
            access = .unauthenticated(routingID: key)
        }
        producers[key] = ProducerPeer(lastSeen: now.monotonic, version: version, access: access, connection: connection)
        outbox.producer(key, speaks: version)
        return access
    }

    /// Why `access` may not do what `envelope` asks (nil: it may). `SUBMIT` is checked per task.
    func refusal(of envelope: Envelope, by access: PeerAccess) -> String? {
        let command = envelope.command
        switch command {
        case .stats, .deadLetters, .purge, .pause, .schedule, .limit:
            return access.roles.contains(.admin) ? nil
                : "refused \(command): needs the admin role; identity '\(access.identity)' has the roles \(access.roles)"
        case .tasks:
            // Which tasks it sees is the listing's business (BrokerEngine+Tasks.swift).
            return access.roles.contains(.admin) || access.roles.contains(.submit) ? nil
                : "refused TASKS: needs the submit role (for its own tasks) or admin (for anyone's); identity '\(access.identity)' has the roles \(access.roles)"
        case .status, .cancel:
            if access.roles.contains(.admin) { return nil }
            let id = envelope[0].string
            guard access.roles.contains(.submit) else {
                return "refused \(command) \(id): needs the submit role (for its own tasks) or admin (for anyone's); identity '\(access.identity)' has the roles \(access.roles)"
            }
            if let task = table[id], task.submitter != access.identity {
                return "refused \(command) \(id): the task is another identity's; \(command) of anyone's task needs the admin role"
            }
            return nil
        default:
            return nil
        }
    }

    /// Answers a refused command with `ERROR` and logs it (rate-limited).
    func refuse(_ text: String, to route: Frame, on side: BrokerSide, version: ProtocolVersion) {
        accessLog.log(logger, "command refused", metadata: ["reason": "\(text)"])
        reply(error: text, to: route, on: side, version: version)
    }

    /// Records who submitted task `id` (and journals it): their tasks' status and cancel are
    /// theirs, and a resubmission of the id must come from them.
    func own(_ id: String, by identity: String) {
        guard let task = table[id] else { return }
        task.submitter = identity
        if table.journaling { table.journal.owned(id: id, owner: identity) }
    }

    // MARK: Consumers

    /// The consumer registered under `key`, if it is the one on this connection. A routing id now
    /// on another connection (handed over) means the registered one is gone: it is removed (its
    /// tasks requeued), and the new connection must announce itself.
    func consumer(_ key: [UInt8], connection: UInt64, now: BrokerInstant) -> ConsumerRecord? {
        guard let consumer = table.consumers[key] else { return nil }
        guard consumer.connection != connection else { return consumer }
        remove(consumer, reason: "its routing id was taken over by another connection", now: now)
        return nil
    }

    /// The credentials of a consumer connection met for the first time; `nil` (and an `ERROR`)
    /// when it may not consume.
    func consumerAccess(_ key: [UInt8], connection: UInt64, route: Frame, version: ProtocolVersion) -> PeerAccess? {
        guard let credentials else { return .unauthenticated(routingID: key) }
        guard connection != 0, let access = credentials.access(on: .backend) else {
            refuse("refused READY: this connection has no identity", to: route, on: .backend, version: version)
            return nil
        }
        guard access.roles.contains(.consume) else {
            refuse("refused READY: needs the consume role; identity '\(access.identity)' has the roles \(access.roles)",
                   to: route, on: .backend, version: version)
            return nil
        }
        return access
    }

    /// `info` with only the task names `access` may consume; the others are named in an `ERROR`
    /// when `tell` (the first announcement, not each capacity update).
    func allowedAnnouncement(_ info: ReadyInfo, for access: PeerAccess, tell: Bool, route: Frame,
                             version: ProtocolVersion) -> ReadyInfo {
        // Without client authentication every peer has every role, the gateway role included.
        guard credentials != nil else { return info }
        let gateway = access.roles.contains(.gateway)
        let refused = info.tasks.filter { !access.allows(task: $0) || (!gateway && $0 == Webhook.taskName) }
        guard !refused.isEmpty else { return info }
        if tell {
            let why = refused == [Webhook.taskName]
                ? "webhook deliveries carry other producers' results: only an identity with the gateway role may serve them, and '\(access.identity)' has \(access.roles)"
                : "identity '\(access.identity)' may consume only \(access.tasksDescription)\(gateway ? "" : " (and \(Webhook.taskName) needs the gateway role)")"
            refuse("refused READY names \(refused.prefix(20).joined(separator: ","))\(refused.count > 20 ? ",…" : ""): \(why); registered for the others",
                   to: route, on: .backend, version: version)
        }
        var allowed = info
        allowed.tasks = info.tasks.filter { !refused.contains($0) }
        return allowed
    }
}

extension ConsumerRecord {
    /// The consumer's identity: its key's name in the clients file, or, without client
    /// authentication, its routing id as text.
    var identity: String { access?.identity ?? PeerAccess.identityText(key) }
}

extension BrokerEngine {
    /// The `security` part of `STATS`.
    func securityStatistics() -> BrokerStatistics.Security {
        var byIdentity: [String: Int] = [:]
        for peer in producers.values { byIdentity[peer.identity, default: 0] += 1 }
        return BrokerStatistics.Security(
            authenticated: credentials != nil,
            producerIdentities: credentials != nil ? byIdentity : nil,
            connections: connections?.open.load(ordering: .relaxed),
            connectionLimit: connections?.limit,
            refusedAtCap: connections?.refusedAtCap.load(ordering: .relaxed),
            refusedHandshakes: connections?.refusedHandshakes.load(ordering: .relaxed))
    }
}
