import ConveyorConsumer
import ConveyorProcess
import ConveyorProducer
import ConveyorSystem
import ConveyorTesting
import ExampleTasks
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// A task that waits: its handler is `async`, so it holds no worker thread while it sleeps.
enum Nap: TaskDefinition {
    static let name = "nap"
    struct Args: Codable, Sendable { let ms: Int }
    struct Output: Codable, Sendable { let slept: Int; let thread: Int }
}

/// The Swift API as an app uses it: one task definition on both sides, async handlers, and the
/// ready-made worker command (the thumbnail example) with its supervision.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TypedTasksTests {
    @Test("typed tasks end to end: one definition on both sides, typed results and failures; 8 async naps of 500 ms on one thread overlap")
    func typedAndAsync() async throws {
        try await withCluster(.init(consumers: 0)) { cluster in
            var registry = TaskRegistry()
            registry.register(Thumbnail.self) { args, _ in try Thumbnail.make(args) }
            registry.register(Nap.self) { args, context async throws in
                try await Task.sleep(for: .milliseconds(args.ms))
                return Nap.Output(slept: args.ms, thread: context.threadIndex)
            }
            var configuration = ConsumerConfiguration()
            configuration.backend = cluster.backend
            configuration.threads = 1
            configuration.prefetch = .fixed(16)
            let consumer = Consumer(configuration: configuration, registry: registry, logger: Logger(label: "typed-test"))
            let service = Task { try await consumer.run() }
            defer {
                consumer.stop()
                service.cancel()
            }
            try await cluster.waitForConsumers(1)
            let producer = try cluster.makeProducer()

            let thumbnail = try await producer.run(Thumbnail.self, .init(url: "https://example.com/a/cat.png", width: 4, height: 2))
            #expect(thumbnail.thumbnail == "thumbs/4x2-cat.png" && thumbnail.bytes == 24)
            await #expect {
                try await producer.run(Thumbnail.self, .init(url: "x", width: 0, height: 1))
            } throws: { error in
                guard case .taskFailed(let result)? = error as? ProducerError else { return false }
                return result.errorMessage == "width and height must be positive, got 0x1"
            }

            let started = ContinuousClock.now
            var handles: [TypedTaskHandle<Nap>] = []
            for _ in 0..<8 { handles.append(try await producer.submit(Nap.self, .init(ms: 500))) }
            for handle in handles { #expect(try await handle.value().slept == 500) }
            let elapsed = started.duration(to: .now)
            // One after another they would take 4 s on the one thread.
            #expect(elapsed < .milliseconds(2_500), "8 async naps took \(elapsed)")
        }
    }

    @Test("the thumbnail example is a worker with the stock options: --help exits 0; with --processes 2, two supervised processes serve typed tasks")
    func workerCommand() async throws {
        let worker = try Cluster.locateExecutable().deletingLastPathComponent().appendingPathComponent("thumbnail-consumer")
        let help = try ManagedProcess(name: "help", executable: worker, arguments: ["--help"])
        #expect(help.waitForExit(timeout: .seconds(20)) == 0)
        _ = help.waitForLine(containing: "--processes", timeout: .seconds(2))
        #expect(help.output.contains { $0.contains("--processes") } && help.output.contains { $0.contains("--drain-timeout") })

        try await withCluster(.init(consumers: 0)) { cluster in
            let process = try ManagedProcess(name: "thumbnails", executable: worker,
                                             arguments: ["--backend", cluster.backend, "--processes", "2", "--threads", "1"])
            defer { _ = process.stop() }
            try await cluster.waitForConsumers(2)
            let producer = try cluster.makeProducer()
            for n in 1...20 {
                let handle = try await producer.submit(WordCount.self, .init(text: String(repeating: "word ", count: n)))
                #expect(try await handle.value().words == n)
            }
            let processes = Set(try await cluster.stats().consumers.compactMap(\.process))
            #expect(processes == [0, 1], "two supervised processes registered: \(processes)")
        }
    }
}
