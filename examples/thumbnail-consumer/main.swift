// A worker app serving its own tasks (Thumbnail and WordCount, from ExampleTasks) with the stock
// consumer's command line, supervision and signal handling:
//
//   swift run thumbnail-consumer --backend tcp://127.0.0.1:5556 --threads 8 --processes 2
import ConveyorConsumer
import ConveyorWorker
import ExampleTasks

@main
enum ThumbnailConsumer {
    static func main() async {
        var registry = TaskRegistry()
        registry.register(Thumbnail.self) { args, context in
            context.logger.debug("making a thumbnail", metadata: ["url": "\(args.url)"])
            return try Thumbnail.make(args)
        }
        // An async handler: it holds no worker thread while it waits.
        registry.register(WordCount.self) { args, _ async in
            await Task.yield()
            return WordCount.count(args)
        }
        await Worker.main(name: "thumbnail-consumer", abstract: "A worker serving 'thumbnail' and 'word-count'.", registry: registry)
    }
}
