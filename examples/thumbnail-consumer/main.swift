// A consumer application with its own task handlers: run it instead of `conveyor consumer` to
// serve your own task names (here `thumbnail` and `word-count`) next to the built-in ones.
//
//   swift run thumbnail-consumer --backend tcp://127.0.0.1:5556 --threads 8
import ConveyorConsumer
import ConveyorBuiltinTasks
import Foundation
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

var backend = "tcp://127.0.0.1:5556"
var threads = 4
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--backend": backend = arguments.next() ?? backend
    case "--threads": threads = Int(arguments.next() ?? "") ?? threads
    default:
        FileHandle.standardError.write(Data("usage: thumbnail-consumer [--backend ENDPOINT] [--threads N]\n".utf8))
        exit(2)
    }
}

var registry = BuiltinTasks.registry
registry.register("thumbnail") { (args: Thumbnail.Args, context: TaskContext) in
    try Thumbnail.make(args, context: context)
}
registry.register("word-count") { (args: WordCountArgs) in
    WordCountResult(words: args.text.split(whereSeparator: \.isWhitespace).count)
}

var configuration = ConsumerConfiguration()
configuration.backend = backend
configuration.threads = threads
let consumer = try Consumer(configuration: configuration, registry: registry, logger: Logger(label: "thumbnail-consumer"))

signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
let signals = [SIGTERM, SIGINT].map { number in
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler { consumer.stop() }
    source.resume()
    return source
}
consumer.start()
print("thumbnail-consumer serving \(registry.names.joined(separator: ", ")) with \(threads) threads via \(backend)")
try consumer.wait()
_ = signals
