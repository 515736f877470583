// A consumer application with its own task handlers: run it instead of `conveyor consumer` to
// serve your own task names (here `thumbnail` and `word-count`).
//
//   swift run thumbnail-consumer --backend tcp://127.0.0.1:5556 --threads 8
//
// It runs the consumer the way `conveyor consumer` does: as a Service in a ServiceGroup
// (ConveyorServices.run), whose graceful shutdown SIGTERM and SIGINT trigger (a drain: running
// tasks finish and return, unstarted ones go back to the broker).
import ArgumentParser
import ConveyorConsumer
import ConveyorSystem
import Logging

/// The task's arguments and result: plain Codable types.
struct Thumbnail {
    struct Args: Codable, Sendable {
        let url: String
        let width: Int
        let height: Int
    }

    struct Result: Codable, Sendable {
        let url: String
        let thumbnail: String
        let bytes: Int
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func make(_ args: Args, context: TaskContext) throws -> Result {
        guard args.width > 0, args.height > 0 else {
            throw Invalid(description: "width and height must be positive, got \(args.width)x\(args.height)")
        }
        // Stands in for real image work; long handlers check the cooperative deadline flag.
        if context.isPastDeadline { throw Invalid(description: "out of time") }
        let name = args.url.split(separator: "/").last.map(String.init) ?? "image"
        return Result(url: args.url, thumbnail: "thumbs/\(args.width)x\(args.height)-\(name)", bytes: args.width * args.height * 3)
    }
}

struct WordCountArgs: Codable, Sendable { let text: String }
struct WordCountResult: Codable, Sendable { let words: Int }

@main
struct ThumbnailConsumer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thumbnail-consumer",
        abstract: "A consumer app serving the tasks 'thumbnail' and 'word-count'.")

    @Option(help: "The broker's backend endpoint.")
    var backend = "tcp://127.0.0.1:5556"

    @Option(help: "Worker threads.")
    var threads = 4

    func validate() throws {
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1-1024") }
    }

    static func main() async {
        // Before anything starts a thread, so that no SIGTERM is lost: see TerminationSignals.
        TerminationSignals.start()
        await main(nil)
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "thumbnail-consumer")

        var registry = TaskRegistry()
        registry.register("thumbnail") { (args: Thumbnail.Args, context: TaskContext) in
            try Thumbnail.make(args, context: context)
        }
        registry.register("word-count") { (args: WordCountArgs) in
            WordCountResult(words: args.text.split(whereSeparator: \.isWhitespace).count)
        }

        var configuration = ConsumerConfiguration()
        configuration.backend = backend
        configuration.threads = threads
        let consumer = Consumer(configuration: configuration, registry: registry, logger: logger)
        let served = registry.names.joined(separator: ", ")
        try await ConveyorServices.run([consumer], logger: logger) { [threads, backend] _ in
            print("thumbnail-consumer serving \(served) with \(threads) threads via \(backend)")
        }
    }
}
