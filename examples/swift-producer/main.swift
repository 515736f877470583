// Submits tasks with the Producer library and awaits their results.
//
//   swift run swift-producer --broker tcp://127.0.0.1:5555
//
// Works against `conveyor consumer` (echo, sha256) and, if it runs, `thumbnail-consumer`.
import ConveyorProducer
import ConveyorSystem
import ExampleTasks
import Foundation
import Logging

struct SHA256Args: Encodable { let seed: String; let iterations: Int }
struct SHA256Result: Decodable { let digest: String }

var broker = "tcp://127.0.0.1:5555"
var withThumbnails = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--broker": broker = arguments.next() ?? broker
    case "--thumbnails": withThumbnails = true
    default:
        FileHandle.standardError.write(Data("usage: swift-producer [--broker ENDPOINT] [--thumbnails]\n".utf8))
        exit(2)
    }
}

// The producer runs for the scope of the closure: `withProducer` starts its service and shuts it
// down when the closure returns. (An application with other services puts the `Producer` in its
// `ServiceGroup` instead.)
let logger = Logger(label: "swift-producer")
let failures = try await withProducer(ProducerConfiguration(broker: broker), logger: logger) { producer in
    // Many tasks at once: submit them all, then await each result.
    let handles = try await withThrowingTaskGroup(of: (Int, TaskHandle).self) { group in
        for i in 0..<10 {
            group.addTask {
                (i, try await producer.submit("sha256", SHA256Args(seed: "item-\(i)", iterations: 1000),
                                              options: TaskOptions(timeoutMilliseconds: 30_000)))
            }
        }
        var handles: [(Int, TaskHandle)] = []
        for try await entry in group { handles.append(entry) }
        return handles.sorted { $0.0 < $1.0 }
    }
    var failures = 0
    for (i, handle) in handles {
        do {
            let result = try await handle.result(as: SHA256Result.self)
            print("item-\(i): \(result.digest)")
        } catch {
            print("item-\(i): \(error)")
            failures += 1
        }
    }

    // A task that fails gives an error result, not a crash.
    let failed = await (try producer.submit("fail", json: #"{"message": "expected failure"}"#)).result()
    print("fail task ended \(failed.status.rawValue): \(failed.errorMessage ?? "")")

    if withThumbnails {
        // Typed tasks: the name and both types come from the definition the worker registered.
        let thumbnail = try await producer.run(Thumbnail.self, .init(url: "https://example.com/cat.png", width: 64, height: 64))
        print("thumbnail: \(thumbnail.thumbnail) (\(thumbnail.bytes) bytes)")
        let words = try await producer.submit(WordCount.self, .init(text: "one task type, two sides"))
        print("word-count: \(try await words.value().words)")
    }
    return failures
}
exit(failures == 0 ? 0 : 1)
