// The example app's tasks, defined once: the worker (thumbnail-consumer) registers them and the
// producer (swift-producer) submits them, both through these types, so the two sides cannot
// disagree on a task's name or on its argument and result types.
public import ConveyorProtocol

/// Makes a thumbnail of an image (here: stands in for real image work).
public enum Thumbnail: TaskDefinition {
    public static let name = "thumbnail"

    public struct Args: Codable, Sendable {
        public let url: String
        public let width: Int
        public let height: Int
        public init(url: String, width: Int, height: Int) {
            self.url = url
            self.width = width
            self.height = height
        }
    }

    public struct Output: Codable, Sendable {
        public let url: String
        public let thumbnail: String
        public let bytes: Int
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// The work itself, kept beside the types so that a test can call it without a broker.
    public static func make(_ args: Args) throws -> Output {
        guard args.width > 0, args.height > 0 else {
            throw Invalid(description: "width and height must be positive, got \(args.width)x\(args.height)")
        }
        let file = args.url.split(separator: "/").last.map(String.init) ?? "image"
        return Output(url: args.url, thumbnail: "thumbs/\(args.width)x\(args.height)-\(file)", bytes: args.width * args.height * 3)
    }
}

/// Counts the words of a text: an `async` handler in the worker.
public enum WordCount: TaskDefinition {
    public static let name = "word-count"
    public struct Args: Codable, Sendable {
        public let text: String
        public init(text: String) { self.text = text }
    }
    public struct Output: Codable, Sendable { public let words: Int }

    public static func count(_ args: Args) -> Output {
        Output(words: args.text.split(whereSeparator: \.isWhitespace).count)
    }
}
