@testable import ConveyorBroker
import ConveyorJournal
import ConveyorProtocol
import Foundation
import Logging
import Testing
import ZeroMQ

/// Who may do what, in the engine without sockets: each message comes with the connection number
/// ZAP gave it and the credentials the clients file holds for it (docs/SECURITY.md).
@Suite("Identities and roles in the broker's engine")
struct AccessTests {
    /// Stands in for the socket loop's reader of ZAP metadata: the credentials of the connection
    /// the next message comes on.
    final class Credentials: CredentialReader {
        var next: PeerAccess?
        func access(on side: BrokerSide) -> PeerAccess? { next }
    }

    let credentials = Credentials()
    let engine: BrokerEngine<RecordingOutbox>
    var outbox: RecordingOutbox { engine.outbox }
    let now = BrokerInstant(wall: 1_800_000_000_000_000_000, monotonic: 5_000_000_000)

    static let alice = PeerAccess(identity: "alice", roles: .submit, tasks: ["echo", "sleep"])
    static let bob = PeerAccess(identity: "bob", roles: .submit, tasks: nil)
    static let ops = PeerAccess(identity: "ops", roles: .admin, tasks: nil)
    static let worker = PeerAccess(identity: "worker", roles: .consume, tasks: ["echo"])

    init() {
        var logger = Logger(label: "access-tests")
        logger.logLevel = .critical
        engine = BrokerEngine(config: BrokerConfiguration(), logger: logger, outbox: RecordingOutbox())
        engine.credentials = credentials
    }

    /// A message from `route` on connection `connection`, whose credentials are `access`.
    func frontend(_ route: [UInt8], _ access: PeerAccess?, connection: UInt64, _ command: Command, _ fields: [[UInt8]]) {
        credentials.next = access
        engine.handleFrontend(Wire.envelope(from: route, command, fields), connection: connection, now: now)
    }

    func backend(_ route: [UInt8], _ access: PeerAccess?, connection: UInt64, _ command: Command, _ fields: [[UInt8]]) {
        credentials.next = access
        engine.handleBackend(Wire.envelope(from: route, command, fields), connection: connection, now: now)
    }

    func submit(_ route: [UInt8], _ access: PeerAccess, connection: UInt64, id: String, name: String = "echo") {
        frontend(route, access, connection: connection, .submit,
                 [Wire.bytes(id), Wire.bytes(name), TaskOptions.default.encoded(for: .current), Wire.bytes("{}")])
    }

    func ready(_ route: [UInt8], _ access: PeerAccess?, connection: UInt64, tasks: [String]) {
        let info = ReadyInfo(capacity: 4, tasks: tasks, host: "h", pid: 7, threads: 4, heartbeatMilliseconds: 1000)
        backend(route, access, connection: connection, .ready, [Array(try! JSONEncoder().encode(info))])
    }

    var errors: [String] { outbox.messages.filter { $0.command == .error }.map { String(decoding: $0.body[0], as: UTF8.self) } }

    @Test("STATS, DEAD_LETTERS, PURGE and PAUSE need the admin role: others get ERROR naming it, an admin gets the reply")
    func adminCommands() {
        let route = Wire.bytes("p-alice")
        for (command, fields) in [(Command.stats, [[UInt8]]()), (.deadLetters, [Wire.bytes("purge"), []]), (.purge, [Wire.bytes("echo")]),
                                  (.pause, [Wire.bytes("pause"), Wire.bytes("echo")]), (.pause, [Wire.bytes("resume"), Wire.bytes("echo")])] {
            outbox.clear()
            let paused = engine.table.paused
            frontend(route, Self.alice, connection: 1, command, fields)
            #expect(errors == ["refused \(command): needs the admin role; identity 'alice' has the roles submit"])
            #expect(!outbox.messages.contains { [.statsReply, .deadLettersReply, .purgeReply, .pauseReply].contains($0.command) })
            #expect(engine.table.paused == paused, "a refused pause or resume changes nothing")
            outbox.clear()
            frontend(Wire.bytes("p-ops"), Self.ops, connection: 2, command, fields)
            #expect(errors.isEmpty)
            #expect(outbox.messages.count == 1, "\(command) answered for an admin")
        }
        #expect(engine.table.paused.isEmpty, "the admin paused 'echo', then resumed it")
    }

    @Test("SUBMIT needs the submit role and a task name the key may submit; each refused task is REJECTED saying why")
    func submitRoles() {
        submit(Wire.bytes("p-ops"), Self.ops, connection: 1, id: "t-ops")
        #expect(outbox.rejected.map(\.reason) == ["refused: SUBMIT needs the submit role; identity 'ops' has the roles admin"])
        outbox.clear()
        submit(Wire.bytes("p-alice"), Self.alice, connection: 2, id: "t-sha", name: "sha256")
        #expect(outbox.rejected.map(\.reason) == ["refused: identity 'alice' may not submit tasks named 'sha256' (its tasks: echo,sleep)"])
        submit(Wire.bytes("p-alice"), Self.alice, connection: 2, id: "t-echo")
        #expect(outbox.accepted == ["t-echo"])
        #expect(engine.table["t-echo"]?.submitter == "alice")
        #expect(engine.table["t-sha"] == nil && engine.table["t-ops"] == nil)
    }

    @Test("STATUS and CANCEL of another identity's task are refused, naming the admin role; an admin may; its id cannot be resubmitted by another")
    func ownTasks() {
        submit(Wire.bytes("p-alice"), Self.alice, connection: 1, id: "job-1", name: "sleep")
        outbox.clear()
        frontend(Wire.bytes("p-bob"), Self.bob, connection: 2, .status, [Wire.bytes("job-1")])
        frontend(Wire.bytes("p-bob"), Self.bob, connection: 2, .cancel, [Wire.bytes("job-1")])
        #expect(errors == ["refused STATUS job-1: the task is another identity's; STATUS of anyone's task needs the admin role",
                           "refused CANCEL job-1: the task is another identity's; CANCEL of anyone's task needs the admin role"])
        submit(Wire.bytes("p-bob"), Self.bob, connection: 2, id: "job-1")
        #expect(outbox.rejected.map(\.reason) == ["refused: task id job-1 is another identity's task; pick ids of your own"])
        #expect(engine.table["job-1"]?.isQueued == true, "nothing changed")
        // An id the broker does not hold: answered as for anyone (unknown).
        outbox.clear()
        frontend(Wire.bytes("p-bob"), Self.bob, connection: 2, .status, [Wire.bytes("nobody")])
        #expect(errors.isEmpty && outbox.messages.map(\.command) == [.statusReply])
        // The same identity on another connection (a CLI call) may; so may an admin.
        outbox.clear()
        frontend(Wire.bytes("p-alice-cli"), Self.alice, connection: 3, .status, [Wire.bytes("job-1")])
        frontend(Wire.bytes("p-ops"), Self.ops, connection: 4, .cancel, [Wire.bytes("job-1")])
        #expect(errors.isEmpty)
        #expect(engine.table["job-1"]?.isDone == true, "cancelled by the admin")
    }

    @Test("a routing id taken over by another connection gets that connection's identity, not the previous one's")
    func takeoverOnTheFrontend() {
        let route = Wire.bytes("producer-same")
        frontend(route, Self.ops, connection: 1, .stats, [])
        #expect(errors.isEmpty)
        frontend(route, Self.alice, connection: 2, .stats, [])
        #expect(errors == ["refused STATS: needs the admin role; identity 'alice' has the roles submit"])
        #expect(engine.producers[route]?.identity == "alice")
        // Without new credentials on the same connection, the record stays as it was.
        frontend(route, nil, connection: 2, .heartbeat, [])
        #expect(engine.producers[route]?.identity == "alice")
    }

    @Test("a consumer without the consume role is not registered; one allowed only echo is registered for echo only and never sent sha256")
    func consumerRoles() {
        ready([0x43, 1], Self.bob, connection: 1, tasks: ["echo"])
        #expect(errors == ["refused READY: needs the consume role; identity 'bob' has the roles submit"])
        #expect(engine.table.consumers.consumers.isEmpty)
        outbox.clear()
        ready([0x43, 2], Self.worker, connection: 2, tasks: ["echo", "sha256"])
        #expect(errors.count == 1 && errors[0].hasPrefix("refused READY names sha256: identity 'worker' may consume only echo"))
        let consumer = engine.table.consumers[[0x43, 2]]
        #expect(consumer?.names == ["echo"] && consumer?.identity == "worker")
        // A capacity update naming sha256 again registers it for echo only, without a second ERROR.
        outbox.clear()
        let update = ReadyInfo(capacity: 8, tasks: ["echo", "sha256"], host: "h", pid: 7, threads: 4, heartbeatMilliseconds: 1000, update: true)
        backend([0x43, 2], nil, connection: 2, .ready, [Array(try! JSONEncoder().encode(update))])
        #expect(errors.isEmpty && engine.table.consumers[[0x43, 2]]?.names == ["echo"])
        submit(Wire.bytes("p-bob"), Self.bob, connection: 3, id: "hash", name: "sha256")
        submit(Wire.bytes("p-bob"), Self.bob, connection: 3, id: "say", name: "echo")
        #expect(outbox.dispatches.map(\.id) == ["say"], "sha256 waits for a consumer allowed it")
        #expect(engine.table["hash"]?.isQueued == true)
    }

    @Test("only an identity with the gateway role is registered for webhook deliveries")
    func gatewayRole() {
        let any = PeerAccess(identity: "pool", roles: .consume, tasks: nil)
        ready([0x43, 1], any, connection: 1, tasks: ["echo", Webhook.taskName])
        #expect(errors.count == 1 && errors[0].hasPrefix("refused READY names \(Webhook.taskName): webhook deliveries carry other producers' results"),
                "\(errors)")
        #expect(engine.table.consumers[[0x43, 1]]?.names == ["echo"])
        outbox.clear()
        let gateway = PeerAccess(identity: "gateway", roles: [.consume, .gateway], tasks: nil)
        ready([0x43, 2], gateway, connection: 2, tasks: [Webhook.taskName])
        #expect(errors.isEmpty && engine.table.consumers[[0x43, 2]]?.names == [Webhook.taskName])
    }

    @Test("a forged result from another connection on a consumer's routing id is not used, and the consumer it replaced is removed")
    func takeoverOnTheBackend() {
        ready([0x43, 1], Self.worker, connection: 1, tasks: ["echo"])
        submit(Wire.bytes("p-bob"), Self.bob, connection: 2, id: "t1")
        #expect(engine.table["t1"]?.holder == [0x43, 1])
        // Another connection of the same key claims the routing id and answers.
        backend([0x43, 1], Self.worker, connection: 3, .done, [Wire.bytes("t1"), Wire.bytes("ok"), Wire.bytes(#""forged""#), Wire.bytes("{}")])
        #expect(outbox.results.isEmpty, "the forged result was not used")
        #expect(engine.table["t1"]?.isQueued == true, "taken back from the consumer that lost its routing id")
        #expect(engine.table.consumers.consumers.isEmpty)
        #expect(outbox.messages.last?.command == .disconnect, "told to announce itself")
    }

    @Test("who submitted a task is journaled (a skippable record), survives a snapshot, and is restored")
    func ownerJournaled() throws {
        engine.table.journaling = true
        submit(Wire.bytes("p-alice"), Self.alice, connection: 1, id: "kept", name: "sleep")
        var bytes: [UInt8] = []
        _ = engine.table.journal.take(into: &bytes)
        JournalEncoder.sealChecksums(&bytes)
        let records = try JournalRecord.decodeAll(bytes)
        #expect(records.contains(.owned(id: "kept", owner: "alice")))
        #expect(JournalRecord.Kind.owned.rawValue & JournalRecord.Kind.skippableBit != 0, "an older broker may skip it")
        var replay = RecoveredState()
        for record in records { replay.apply(record) }
        #expect(replay.tasks["kept"]?.owner == "alice")
        // A snapshot writes it again after the task.
        var snapshot = JournalEncoder()
        try replay.snapshotRecords(into: &snapshot) { _ throws(JournalError) in }
        var written: [UInt8] = []
        _ = snapshot.take(into: &written)
        JournalEncoder.sealChecksums(&written)
        var again = RecoveredState()
        for record in try JournalRecord.decodeAll(written) { again.apply(record) }
        #expect(again.tasks["kept"]?.owner == "alice")
    }

    @Test("without client authentication everyone may do everything, and the identity is the routing id")
    func withoutAuthentication() {
        let open = BrokerEngine<RecordingOutbox>.recording()
        open.handleFrontend(Wire.envelope(from: Wire.bytes("producer-x"), .stats, []), now: now)
        #expect(open.outbox.messages.map(\.command) == [.statsReply])
        #expect(open.producers[Wire.bytes("producer-x")]?.identity == "producer-x")
        let info = ReadyInfo(capacity: 4, tasks: ["echo"], host: "h", pid: 7, threads: 4, heartbeatMilliseconds: 1000)
        open.handleBackend(Wire.envelope(from: [0, 1, 2], .ready, [Array(try! JSONEncoder().encode(info))]), now: now)
        #expect(open.table.consumers[[0, 1, 2]]?.identity == "0x000102")
    }
}
