import ConveyorWorker
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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try await withBrokerClient(endpoint, logging, label: "conveyor.dead-letters") { producer in
            if requeue != nil || requeueAll {
                let outcome = try await producer.deadLetters(.requeue, id: requeue)
                printLine(String(decoding: try encoder.encode(outcome), as: UTF8.self))
            } else if purge != nil || purgeAll {
                let outcome = try await producer.deadLetters(.purge, id: purge)
                printLine(String(decoding: try encoder.encode(outcome), as: UTF8.self))
            } else {
                // One JSON line per dead letter: {"attempts", "id", "name", "reason"}.
                for letter in try await producer.stats().deadLetters {
                    printLine(String(decoding: try encoder.encode(letter), as: UTF8.self))
                }
            }
        }
    }
}
