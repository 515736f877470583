/// What a client key may do (docs/SECURITY.md): the roles of its line in the clients file.
public struct Roles: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Submit tasks; status and cancel of its own; their results. Connects to the frontend.
    public static let submit = Roles(rawValue: 1)
    /// Register as a consumer of the task names it is allowed, receive their dispatches.
    /// Connects to the backend.
    public static let consume = Roles(rawValue: 2)
    /// Stats, dead letters, purge, pause and resume, schedules, limits, status and cancel of anyone's task. Connects
    /// to the frontend.
    public static let admin = Roles(rawValue: 4)
    /// Serve webhook deliveries (the reserved task name `conveyor.webhook`, which carries other
    /// producers' results): an HTTP gateway's consumer identity. With `consume`.
    public static let gateway = Roles(rawValue: 8)
    /// Everything: what every peer of a broker without client authentication may do.
    public static let all: Roles = [.submit, .consume, .admin, .gateway]

    /// The roles by the names the clients file uses, in the order they are listed.
    public static let names: [(name: String, role: Roles)] = [("submit", .submit), ("consume", .consume), ("admin", .admin), ("gateway", .gateway)]

    /// `submit,admin`; `none` when empty.
    public var description: String {
        let listed = Self.names.filter { contains($0.role) }.map(\.name)
        return listed.isEmpty ? "none" : listed.joined(separator: ",")
    }

    /// Roles from a comma-separated list of names; `nil` naming the first unknown one.
    public init(parsing text: Substring) throws(AllowListProblem) {
        var roles: Roles = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let role = Self.names.first(where: { $0.name == name })?.role else {
                throw AllowListProblem("unknown role '\(name)' (the roles are submit, consume, admin and gateway)")
            }
            roles.insert(role)
        }
        self = roles
    }
}

/// Who a peer is and what it may do, as the broker's engine knows it: from the ZAP handler's
/// answer for its connection (the key's line in the clients file), or, without client
/// authentication, everything, under its routing id. One per connection, shared by the peer's
/// record; never changed (a reloaded clients file applies to the next connection).
public final class PeerAccess: Sendable {
    /// The identity: the key's name in the clients file, or without authentication the peer's
    /// routing id as text (`producer-…`, or `0x` and hex for a generated one).
    public let identity: String
    public let roles: Roles
    /// The task names it may submit and consume; `nil`: any.
    public let tasks: Set<String>?

    public init(identity: String, roles: Roles, tasks: Set<String>?) {
        self.identity = identity
        self.roles = roles
        self.tasks = tasks
    }

    /// A peer of a broker without client authentication: everything, named by its routing id.
    static func unauthenticated(routingID: [UInt8]) -> PeerAccess {
        PeerAccess(identity: identityText(routingID), roles: .all, tasks: nil)
    }

    /// A routing id as text: itself when it is visible ASCII, else `0x` and hex.
    static func identityText(_ routingID: [UInt8]) -> String {
        if !routingID.isEmpty, routingID.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return String(decoding: routingID, as: UTF8.self)
        }
        return "0x" + routingID.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func allows(task name: String) -> Bool {
        tasks?.contains(name) ?? true
    }

    /// `tasks=…` as the clients file says it: `*` for any.
    var tasksDescription: String {
        tasks.map { $0.sorted().joined(separator: ",") } ?? "*"
    }
}

/// The ZAP metadata properties the broker's handler returns, which libzmq attaches to every
/// message of the connection (read back with `MessageMetadata`). Names of at most 15 bytes cost
/// libzmq no allocation when they are looked up.
enum AccessProperty {
    /// The roles, as in the clients file (`submit,admin`).
    static let roles: StaticString = "X-Cvy-Roles"
    /// The task names, comma-separated, or `*`.
    static let tasks: StaticString = "X-Cvy-Tasks"
    /// A number unique to the connection in this broker process (hex): a routing id handed over
    /// to another connection is noticed by it.
    static let connection: StaticString = "X-Cvy-Conn"
    /// libzmq's own property for the ZAP reply's user id: the identity.
    static let userID: StaticString = "User-Id"

    /// The properties of the reply for `entry`, on connection `number`.
    static func properties(for entry: AllowList.Entry, connection number: UInt64) -> [(name: String, value: [UInt8])] {
        [("\(roles)", Array(entry.roles.description.utf8)),
         ("\(tasks)", Array((entry.tasks.map { $0.sorted().joined(separator: ",") } ?? "*").utf8)),
         ("\(connection)", Array(String(number, radix: 16).utf8))]
    }

    /// The connection number in a property's bytes (hex); 0 when absent or not a number.
    static func connectionNumber(_ bytes: UnsafeRawBufferPointer?) -> UInt64 {
        guard let bytes, !bytes.isEmpty, bytes.count <= 16 else { return 0 }
        var value: UInt64 = 0
        for byte in bytes {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return 0
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// The access the properties describe.
    static func access(userID: String?, roles: String?, tasks: String?) -> PeerAccess? {
        guard let userID, !userID.isEmpty, let roles else { return nil }
        let parsed = (try? Roles(parsing: Substring(roles))) ?? []
        let names: Set<String>? = (tasks == nil || tasks == "*") ? nil : Set(tasks!.split(separator: ",").map(String.init))
        return PeerAccess(identity: userID, roles: parsed, tasks: names)
    }
}
