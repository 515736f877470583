@testable import ConveyorBroker
import Testing
import ZeroMQ

/// The clients file: what it accepts, and the line and problem it names when it refuses.
@Suite("Clients file")
struct AllowListTests {
    static let keys = (0..<3).map { _ in try! CurveKeyPair.generate() }
    static func z85(_ index: Int) -> String { try! Z85.encode(keys[index].publicKey) }

    @Test("keys, names, roles and task names; comments and blank lines")
    func parses() throws {
        let text = """
            # KEY NAME roles=… tasks=…

            \(Self.z85(0))  billing   roles=submit tasks=echo,sha256
            \t\(Self.z85(1))\tops\troles=admin,submit   # the operators
            #\(Self.z85(2)) retired roles=consume
            \(Self.z85(2)) worker-1@eu roles=consume tasks=*
            """
        let list = try AllowList.parse(text)
        #expect(list.count == 3)
        #expect(list[Self.keys[0].publicKey] == .init(key: Self.keys[0].publicKey, name: "billing", roles: .submit, tasks: ["echo", "sha256"], line: 3))
        #expect(list[Self.keys[1].publicKey]?.roles == [.admin, .submit] && list[Self.keys[1].publicKey]?.tasks == nil)
        #expect(list[Self.keys[2].publicKey]?.name == "worker-1@eu" && list[Self.keys[2].publicKey]?.line == 6)
    }

    @Test("a bad line is refused with its number and what is wrong", arguments: [
        ("not-a-key name roles=submit", "line 1: 'not-a-key' is not a CURVE public key"),
        ("KEY0", "line 1: the key has no name"),
        ("KEY0 bad/name roles=submit", "line 1: 'bad/name' is not a valid name"),
        ("KEY0 n", "line 1: the line has no roles="),
        ("KEY0 n roles=submit,root", "line 1: unknown role 'root' (the roles are submit, consume, admin and gateway)"),
        ("KEY0 n roles=", "line 1: unknown role ''"),
        ("KEY0 n roles=submit color=red", "line 1: unknown field 'color=red'"),
        ("KEY0 n roles=submit tasks=", "line 1: tasks= names '', which is not a task name"),
        ("KEY0 n roles=submit roles=admin", "line 1: roles= is given twice"),
        ("# fine\nKEY0 a roles=submit\nKEY0 b roles=admin", "line 3: this key is already listed on line 2"),
    ])
    func refuses(_ text: String, _ expected: String) {
        let source = text.replacingOccurrences(of: "KEY0", with: Self.z85(0))
        #expect {
            _ = try AllowList.parse(source, source: "clients")
        } throws: { error in
            "\(error)".hasPrefix("clients file clients, " + expected)
        }
    }

    @Test("a file that does not exist, and one too large, are refused naming the file")
    func files() {
        #expect(throws: AllowListError(file: "/nonexistent/clients", line: nil, problem: "cannot read it")) {
            _ = try AllowList.load(path: "/nonexistent/clients")
        }
    }

    @Test("the cap is --max-connections, but never more than the open-files limit less the reserve")
    func connectionCap() {
        #expect(ConnectionGate.effectiveLimit(requested: 10_000, fileLimit: 1_100) == 1_100 - ConnectionGate.descriptorReserve)
        #expect(ConnectionGate.effectiveLimit(requested: 10_000, fileLimit: 1 << 20) == 10_000)
        #expect(ConnectionGate.effectiveLimit(requested: 10_000, fileLimit: 64) == 1)
    }
}
