import ConveyorProcess
import ConveyorProducer
import ConveyorProtocol
import ConveyorSystem
import ConveyorTesting
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// The connection cap (docs/RELIABILITY.md): a broker whose open-files limit is 1,100 meets 1,100
/// idle connections and more, and keeps serving the clients it has without spinning.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ConnectionCapTests {
    static let fileLimit = 1_100

    @Test("1,200 idle connections at a broker limited to 1,100 open files: refused past the cap, a bystander's STATS within 5 s, a batch completes, the broker's CPU well under 100 %")
    func idleConnectionFlood() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            print("skipped: prlimit (util-linux) is not installed")
            return
        }
        var options = Cluster.Options(consumers: 1, threads: 4, brokerArguments: ["--in-memory"])
        options.brokerLauncher = ["/usr/bin/prlimit", "--nofile=\(Self.fileLimit):\(Self.fileLimit)"]
        try await withCluster(options) { cluster in
            let broker = try #require(cluster.broker)
            let bystander = try cluster.makeProducer()
            let batcher = try cluster.makeProducer()
            _ = try await bystander.stats()
            _ = try await batcher.stats()

            let stop = StopFlag()
            let opened = Opened()
            let frontend = cluster.frontend, backend = cluster.backend
            // 1,100 idle ZeroMQ peers on both sockets, which stay (and reconnect when refused), and
            // 100 raw TCP connections that never say a word (closed after the handshake timeout).
            async let flood: Void = runOnDedicatedThread(name: "idle-flood", stop: stop) {
                try Self.holdIdleConnections(frontend: frontend, backend: backend, zeroMQ: 1_100, raw: 100, opened: opened, stop: stop)
            }
            try await waitUntil(timeout: .seconds(30)) { opened.count.load(ordering: .relaxed) == 1_200 }
            let capped = broker.waitForLine(containing: "connection refused: the broker is at its connection cap", timeout: .seconds(30))
            #expect(capped != nil, "the cap was reached and said so")

            let cpu = try await Self.cpuPercent(pid: broker.pid, over: .seconds(3))
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(broker.pid)/fd").count) ?? 0
            print("broker with 1,200 idle connections (the refused ones reconnecting): \(String(format: "%.1f", cpu)) % CPU, \(descriptors) files open")
            #expect(cpu < 50, "the broker spun: \(cpu) % of a core")
            #expect(descriptors < Self.fileLimit, "the broker has \(descriptors) files open of \(Self.fileLimit)")

            let started = ContinuousClock.now
            let stats = try await bystander.stats()
            #expect(started.duration(to: .now) < .seconds(5), "a bystander's STATS answered within 5 s")
            let security = try #require(stats.security)
            #expect(security.connectionLimit == Self.fileLimit - 128)
            #expect((security.connections ?? .max) <= Self.fileLimit - 128 + 8, "\(security)")
            #expect((security.refusedAtCap ?? 0) > 0)

            let handles = try await batcher.submit(batch: (0..<2_000).map { TaskSubmission("echo", json: RawJSON(#"{"b":\#($0)}"#)) })
            for (i, handle) in handles.enumerated() {
                let result = await handle.result()
                #expect(result.status == .ok && result.body.text == #"{"b":\#(i)}"#, "task \(i): \(result)")
            }

            stop.set()
            try await flood
            // Once they are gone, newcomers get in again.
            let newcomer = try cluster.makeProducer { $0.requestTimeout = .seconds(30) }
            try await waitUntil(timeout: .seconds(30)) { (try? await newcomer.stats())?.security?.connections.map { $0 < 100 } == true }
            #expect(broker.isRunning)
        }
    }

    /// Connections opened so far, counted by the thread that opens them.
    final class Opened: Sendable {
        let count = Atomic<Int>(0)
    }

    /// Opens `zeroMQ` DEALERs (spread over both endpoints, in contexts of 550) and `raw` TCP
    /// connections to the frontend, counts them in `opened`, and holds them until `stop`.
    static func holdIdleConnections(frontend: String, backend: String, zeroMQ: Int, raw: Int, opened: Opened,
                                    stop: StopFlag) throws {
        var contexts: [Context] = []
        var sockets: [Socket] = []
        for index in 0..<zeroMQ {
            if index % 550 == 0 { contexts.append(try Context()) }
            let socket = try Socket(contexts.last!, type: .dealer)
            try socket.set(.linger, 0)
            try socket.connect(index % 4 == 3 ? backend : frontend)
            sockets.append(socket)
            opened.count.add(1, ordering: .relaxed)
        }
        let port = UInt16(frontend.split(separator: ":").last.flatMap { Int($0) } ?? 0)
        var descriptors: [Int32] = []
        defer { for fd in descriptors { close(fd) } }
        for _ in 0..<raw {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            descriptors.append(fd)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            opened.count.add(1, ordering: .relaxed)
        }
        while !stop.isSet { usleep(50_000) }
        sockets.removeAll()
    }

    /// The CPU time `pid` used over `duration`, in % of one core (`/proc/PID/stat`: utime + stime).
    static func cpuPercent(pid: Int32, over duration: Duration) async throws -> Double {
        func ticks() -> Int {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { return 0 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        }
        let before = ticks(), started = ContinuousClock.now
        try await Task.sleep(for: duration)
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(ticks() - before) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds * 100
    }
}
