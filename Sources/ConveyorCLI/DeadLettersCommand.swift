import ArgumentParser
import ConveyorProtocol
import ConveyorSystem
import Foundation
import ConveyorProducer

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List, requeue or purge tasks that used up their attempts.",
        discussion: "Without options, lists the dead letters. A requeued task starts again with fresh attempts under its own id.")

    @Option(help: "Requeue the dead letter with this task id.") var requeue: String?
    @Flag(help: "Requeue every dead letter.") var requeueAll = false
    @Option(help: "Purge the dead letter with this task id.") var purge: String?
    @Flag(help: "Purge every dead letter.") var purgeAll = false
    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        let chosen = [requeue != nil, requeueAll, purge != nil, purgeAll].filter { $0 }.count
        guard chosen <= 1 else { throw ValidationError("choose one of --requeue, --requeue-all, --purge, --purge-all") }
    }

    func run() async throws {
        try await withBrokerClient(endpoint, logging, label: "conveyor.dead-letters") { producer in
            if requeue != nil || requeueAll {
                printLine(try await producer.deadLetters("requeue", id: requeue).text)
            } else if purge != nil || purgeAll {
                printLine(try await producer.deadLetters("purge", id: purge).text)
            } else {
                let stats = try await producer.stats()
                let object = try JSONSerialization.jsonObject(with: Data(stats.bytes)) as? [String: Any] ?? [:]
                for letter in object["dead_letters"] as? [[String: Any]] ?? [] {
                    let data = try JSONSerialization.data(withJSONObject: letter, options: [.sortedKeys])
                    printLine(String(decoding: data, as: UTF8.self))
                }
            }
        }
    }
}
