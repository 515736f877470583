import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import Testing
import TestSupport
import ZeroMQ

/// Random messages that speak the protocol well enough to get past the first checks (valid tags,
/// every command and unknown ones, random groups, sizes, options, JSON bodies), from peers that
/// come and go, at a broker whose address space is capped (`prlimit --as`), so that a memory
/// regression fails this test rather than driving the machine out of memory.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ProtocolFuzzTests {
    @Test("30,000 random protocol-shaped messages on both sockets: the broker lives within its memory cap and serves a bystander")
    func randomProtocolMessages() async throws {
        try await withCluster(.init(consumers: 1, threads: 4)) { cluster in
            let pid = try #require(cluster.broker?.pid)
            let capped = Self.capAddressSpace(pid: pid, extra: 2 << 30)
            let before = residentBytes(pid)
            let frontend = cluster.frontend, backend = cluster.backend
            try await runOnDedicatedThread(name: "protocol-fuzz", stop: StopFlag()) {
                var random = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
                let context = try Context()
                var peers: [Socket] = []
                for index in 0..<8 {
                    let socket = try Socket(context, type: .dealer)
                    try socket.set(.linger, 0)
                    try socket.set(.sendHighWaterMark, 100_000)
                    try socket.connect(index % 2 == 0 ? frontend : backend)
                    peers.append(socket)
                }
                for n in 0..<30_000 {
                    let index = random.below(peers.count)
                    if random.chance(0.001) {
                        // A peer leaves and a new one (a new routing id) comes.
                        let socket = try Socket(context, type: .dealer)
                        try socket.set(.linger, 0)
                        try socket.connect(index % 2 == 0 ? frontend : backend)
                        peers[index] = socket
                    }
                    _ = try? peers[index].send(multipart: Self.message(&random, n: n), flags: .dontWait)
                    // Drain replies now and then, as a careless client would not.
                    if n % 64 == 0 { for peer in peers { while (try? peer.receiveMultipart(flags: .dontWait)) != nil {} } }
                }
            }
            #expect(cluster.broker?.isRunning == true, "the broker died (capped: \(capped))")
            try await HostilePeerTests.bystanderBatch(cluster)
            let growth = residentBytes(pid) - before
            #expect(growth < 256 << 20, "broker grew \(growth >> 20) MB")
            print("protocol fuzz: broker RSS +\(growth >> 20) MB, address space capped: \(capped)")
        }
    }

    /// Caps the broker's address space at its current size plus `extra`; says whether it could.
    static func capAddressSpace(pid: Int32, extra: Int) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
              let kilobytes = line.split(separator: " ").compactMap({ Int($0) }).first else { return false }
        let limit = kilobytes * 1024 + extra
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = ["--pid", "\(pid)", "--as=\(limit):\(limit)"]
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static let commands: [UInt8] = Command.allCases.map(\.rawValue) + [0x00, 0x09, 0x0A, 0x19, 0x25, 0x7F, 0xFF]

    /// One message: a tag (mostly valid), a command, and fields shaped like that command's.
    static func message(_ random: inout SplitMix64, n: Int) -> [[UInt8]] {
        let tag: [UInt8] = random.chance(0.95) ? (random.chance(0.8) ? Array("CVY3".utf8) : Array("CVY2".utf8)) : Array("CVY9".utf8)
        let command = commands[random.below(commands.count)]
        var frames: [[UInt8]] = [tag, [command]]
        switch Command(rawValue: command) {
        case .submit?, .done?, .dispatch?, .result?:
            var fields: [[UInt8]] = []
            for _ in 0..<(1 + random.below(8)) {
                fields.append(Array("fz-\(random.below(500))".utf8))
                fields.append(Array((random.chance(0.5) ? "echo" : "n\(random.below(50))").utf8))
                fields.append(options(&random))
                fields.append(json(&random))
            }
            if random.chance(0.1) { fields.removeLast() }  // a short group
            frames.append(packedFields(fields))
        case .renew?, .accepted?:
            frames.append(packedFields((0..<(1 + random.below(20))).map { _ in Array("fz-\(random.below(500))".utf8) }))
        case .ready?:
            let capacity = random.chance(0.1) ? -1 : random.below(200_000)
            let names = (0..<random.below(random.chance(0.05) ? 3_000 : 5)).map { #""n\#($0)""# }.joined(separator: ",")
            frames.append(Array(#"{"capacity":\#(capacity),"threads":\#(random.below(1_000)),"host":"fz","pid":\#(n),"tasks":[\#(names)],"heartbeat_ms":\#(random.below(100_000)),"update":\#(random.chance(0.5))}"#.utf8))
        case .purge?, .status?, .cancel?:
            frames.append(Array((random.chance(0.9) ? "fz-\(random.below(500))" : "bad name").utf8))
        default:
            for _ in 0..<random.below(4) {
                frames.append(random.chance(0.01) ? [UInt8](repeating: UInt8(truncatingIfNeeded: random.next()), count: 1 << 20)
                                                  : bytes(&random, count: random.below(256)))
            }
        }
        return frames
    }

    static func options(_ random: inout SplitMix64) -> [UInt8] {
        if random.chance(0.5) { return [] }
        if random.chance(0.5) { return TaskOptions(timeoutMilliseconds: UInt32(1 + random.below(60_000)), priority: Int32(random.below(2_000_000)) - 1_000_000, maxAttempts: UInt32(1 + random.below(5)), retryBackoffMilliseconds: UInt32(random.below(100_000))).encoded(for: .v3) }
        return bytes(&random, count: random.below(40))
    }

    static func json(_ random: inout SplitMix64) -> [UInt8] {
        random.chance(0.8) ? Array(#"{"r":\#(random.below(1_000))}"#.utf8) : bytes(&random, count: random.below(100))
    }

    static func bytes(_ random: inout SplitMix64, count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }
}
