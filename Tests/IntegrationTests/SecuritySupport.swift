import ConveyorProcess
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import Testing
import ZeroMQ

/// CURVE keys made by `conveyor keygen --output`, run for real, in a temporary directory, and the
/// broker's clients file beside them.
final class KeyRing: Sendable {
    let directory: String
    let executable: URL

    init() throws {
        directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-keys-")
        executable = try Cluster.locateExecutable()
    }

    /// `conveyor keygen --output DIR/NAME.keys`: the file and the key pair in it.
    func make(_ name: String) throws -> (file: String, keys: CurveKeyPair) {
        let file = directory + "/" + name + ".keys"
        let keygen = try ManagedProcess(name: "keygen", executable: executable, arguments: ["keygen", "--output", file])
        #expect(keygen.waitForExit(timeout: .seconds(30)) == 0, "\(keygen.output)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let secret = try #require(text.split(separator: "\n").first { $0.hasPrefix("secret-key ") }).dropFirst("secret-key ".count)
        return (file, try CurveKeyPair(secretKey: try Z85.decode(String(secret))))
    }

    /// The clients file's path.
    var clients: String { directory + "/clients" }

    /// Writes the clients file: one `KEY NAME FIELDS` line per entry.
    func writeClients(_ entries: [(keys: CurveKeyPair, line: String)]) throws {
        let text = try entries.map { "\(try Z85.encode($0.keys.publicKey)) \($0.line)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: clients, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A cluster whose broker authenticates clients: its own key pair, a clients file with `ops`
/// (admin and submit, the cluster's own producers), `alice` (submit), `worker` (consume) and
/// whatever `more` adds; consumers start with the broker's public key, each with its own key file.
struct SecureSetup {
    let ring: KeyRing
    let broker: (file: String, keys: CurveKeyPair)
    let ops: CurveKeyPair
    let alice: CurveKeyPair
    let worker: (file: String, keys: CurveKeyPair)
    var serverKey: String { try! Z85.encode(broker.keys.publicKey) }

    init(ring: KeyRing) throws {
        self.ring = ring
        broker = try ring.make("broker")
        ops = try ring.make("ops").keys
        alice = try ring.make("alice").keys
        worker = try ring.make("worker")
    }

    /// The cluster's options: `lines` are the clients file's entries after the standard ones.
    func options(consumers: Int = 0, aliceTasks: String = "echo,sha256,sleep,parked", workerTasks: String = "echo,flaky,sleep",
                 more: [(keys: CurveKeyPair, line: String)] = [], brokerArguments: [String] = []) throws -> Cluster.Options {
        try ring.writeClients([(ops, "ops roles=admin,submit"), (alice, "alice roles=submit tasks=\(aliceTasks)"),
                               (worker.keys, "worker roles=consume tasks=\(workerTasks)")] + more)
        return Cluster.Options(
            consumers: consumers, threads: 2,
            brokerArguments: ["--curve-secret-file", broker.file, "--curve-clients-file", ring.clients] + brokerArguments,
            consumerArguments: ["--curve-server-key", serverKey, "--curve-secret-file", worker.file],
            curveServerKey: broker.keys.publicKey, curveClientKeys: ops)
    }
}

/// A raw DEALER with a CURVE key pair of its own, talking to a broker by hand on a thread of its
/// own: the rogue of the tests, which holds the broker's public key and nothing else.
enum RawPeer {
    /// Connects with `keys`, sends `messages`, and returns what came back within `wait`, and
    /// whether the handshake was refused (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`).
    static func exchange(_ endpoint: String, serverKey: [UInt8], keys: CurveKeyPair, messages: [[[UInt8]]],
                         wait: Duration = .seconds(2)) async throws -> (replies: [[String]], refused: Bool) {
        try await runOnDedicatedThread(name: "raw-peer", stop: StopFlag()) { () throws -> ([[String]], Bool) in
            let context = try Context()
            let socket = try Socket(context, type: .dealer)
            try socket.set(.linger, 0)
            try socket.set(.curveServerKey, serverKey)
            try socket.set(.curvePublicKey, keys.publicKey)
            try socket.set(.curveSecretKey, keys.secretKey)
            let monitor = try SocketMonitor(socket)
            try socket.connect(endpoint)
            for message in messages { try socket.send(multipart: message) }
            var replies: [[String]] = []
            var refused = false
            var poller = Poller()
            poller.add(socket)
            poller.add(monitor)
            let deadline = ContinuousClock.now.advanced(by: wait)
            while ContinuousClock.now < deadline {
                guard try poller.poll(timeout: ContinuousClock.now.duration(to: deadline)) > 0 else { continue }
                while let frames = try socket.receiveMultipart(flags: .dontWait) { replies.append(frames.map(\.string)) }
                while let event = try monitor.next(timeout: .zero) { if event.kind == .handshakeFailedAuth { refused = true } }
            }
            return (replies, refused)
        }
    }

    static let tag = Array("CVY3".utf8)

    static func message(_ command: Command, _ fields: [[UInt8]] = []) -> [[UInt8]] {
        [tag, [command.rawValue]] + fields
    }

    /// One packed frame (PROTOCOL.md §2.1) of `fields`.
    static func packed(_ fields: [[UInt8]]) -> [UInt8] {
        fields.flatMap { field in
            let count = UInt32(field.count)
            return [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + field
        }
    }
}

/// Lines of a consumer's `--execution-log`: (task id, task name, pid).
func executionLog(_ path: String) -> [(id: String, name: String, pid: Int)] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line in
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let id = object["id"] as? String, let name = object["name"] as? String, let pid = object["pid"] as? Int else { return nil }
        return (id, name, pid)
    }
}
