@testable import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import Foundation
import Testing

struct Size: Codable, Sendable { let width: Int; let height: Int }
struct ResizeArgs: Codable, Sendable { let path: String; let size: Size; let tags: [Int]? }
struct ResizeResult: Codable, Sendable { let path: String; let pixels: Int }

@Suite("Task registry")
struct TaskRegistryTests {
    static func context(_ name: String = "resize", id: String = "t-1", attempt: Int = 1,
                        deadline: ContinuousClock.Instant = .now + .seconds(60)) -> TaskContext {
        TaskContext(taskID: id, name: name, attempt: attempt, threadIndex: 0, deadline: deadline)
    }

    static var resizeRegistry: TaskRegistry {
        var registry = TaskRegistry()
        registry.register("resize") { (args: ResizeArgs) in
            ResizeResult(path: args.path, pixels: args.size.width * args.size.height)
        }
        return registry
    }

    /// Runs the handler registered as `name` on `json`.
    static func run(_ registry: TaskRegistry, _ name: String, _ json: String) throws -> String {
        let handler = try #require(registry.handler(named: name))
        return try handler(RawJSON(json), context(name)).text
    }

    /// The `TaskInputError` running `json` throws.
    static func inputError(_ json: String) -> TaskInputError? {
        #expect(throws: TaskInputError.self) { try run(resizeRegistry, "resize", json) }
    }

    @Test("A Codable handler decodes its args and encodes its result as compact sorted JSON")
    func codableRoundTrip() throws {
        let output = try Self.run(Self.resizeRegistry, "resize", #"{"path":"a/b.png","size":{"width":3,"height":4}}"#)
        #expect(output == #"{"path":"a/b.png","pixels":12}"#)
    }

    @Test("A missing field gives bad_args naming the field")
    func missingField() throws {
        let error = try #require(Self.inputError(#"{"path":"x"}"#))
        #expect(error.kind == .badArgs)
        #expect(error.message == "args for 'resize' do not decode to ResizeArgs: missing field 'size'")
        #expect(error.description == error.message)
    }

    @Test("A missing nested field names the field and the object it belongs in")
    func missingNestedField() throws {
        let error = try #require(Self.inputError(#"{"path":"x","size":{"width":1}}"#))
        #expect(error.kind == .badArgs)
        #expect(error.message.hasSuffix("missing field 'height' in field 'size'"), "\(error.message)")
    }

    @Test("A value of the wrong type gives bad_args naming the field path and the expected type", arguments: [
        (#"{"path":5,"size":{"width":1,"height":1}}"#, "field 'path': expected String"),
        (#"{"path":"x","size":{"width":"wide","height":1}}"#, "field 'size.width': expected Int"),
        (#"{"path":"x","size":[1,2]}"#, "field 'size': expected"),
        (#"{"path":"x","size":{"width":1,"height":1},"tags":[1,"two"]}"#, "field 'tags[1]': expected Int"),
        (#"[1,2]"#, "the top level: expected"),
    ])
    func wrongType(json: String, expected: String) throws {
        let error = try #require(Self.inputError(json))
        #expect(error.kind == .badArgs)
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(error.message.hasPrefix("args for 'resize' do not decode to ResizeArgs: "))
    }

    /// Foundation's JSONDecoder (Linux, Swift 6.3) reports a number that does not fit the field's
    /// type as dataCorrupted with an empty coding path, so the message cannot name the field and
    /// reads "not valid JSON" although the JSON is valid (see the report).
    @Test("A number that does not fit an Int field gives bad_args", arguments: ["1.5", "1e20", "-99999999999999999999"])
    func numberOutOfRange(width: String) throws {
        let error = try #require(Self.inputError(#"{"path":"x","size":{"width":\#(width),"height":1}}"#))
        #expect(error.kind == .badArgs)
        #expect(error.message.hasPrefix("args for 'resize' do not decode to ResizeArgs: "))
    }

    @Test("null for a required field gives bad_args saying null was found")
    func nullField() throws {
        let error = try #require(Self.inputError(#"{"path":null,"size":{"width":1,"height":1}}"#))
        #expect(error.kind == .badArgs)
        #expect(error.message.contains("field 'path'"), "\(error.message)")
        #expect(error.message.contains("null"), "\(error.message)")
    }

    /// JSONDecoder reports syntax errors as DecodingError.dataCorrupted, so a Codable handler
    /// classes malformed JSON as bad_args ("not valid JSON"), never malformed_json. The consumer
    /// validates args before calling any handler, so malformed_json still reaches producers.
    @Test("Malformed JSON given straight to a Codable handler gives bad_args saying it is not valid JSON", arguments: [
        #"{"path":"#, "{'path':'x'}", "", "{} x", #"{"path":"x""#,
    ])
    func malformedJSON(json: String) throws {
        let error = try #require(Self.inputError(json))
        #expect(error.kind == .badArgs)
        #expect(error.message == "args for 'resize' do not decode to ResizeArgs: not valid JSON")
    }

    @Test("A raw handler gets the args bytes and the context untouched and its result passes through")
    func rawPassthrough() throws {
        var registry = TaskRegistry()
        let seen = Box<(RawJSON, TaskContext)?>(nil)
        registry.registerRaw("raw") { json, context in
            seen.update { $0 = (json, context) }
            return RawJSON(bytes: json.bytes + Array(" ".utf8))
        }
        let args = RawJSON(bytes: [0x7B, 0x22, 0xC3, 0xA9, 0x22, 0x3A, 0x31, 0x7D]) // {"é":1}
        let handler = try #require(registry.handler(named: "raw"))
        let output = try handler(args, Self.context("raw", id: "job-9", attempt: 3))
        #expect(output.bytes == args.bytes + [0x20])
        let (json, context) = try #require(seen.value)
        #expect(json == args)
        #expect(context.taskID == "job-9")
        #expect(context.name == "raw")
        #expect(context.attempt == 3)
        // The registry itself does not validate raw args: the consumer does, before calling.
        #expect(try handler(RawJSON("not json"), Self.context("raw")).text == "not json ")
    }

    @Test("An error thrown by a Codable handler comes out as itself, not as an input error")
    func handlerErrorPassesThrough() throws {
        let registry = BuiltinTasks.registry
        let handler = try #require(registry.handler(named: "fail"))
        let error = #expect(throws: BuiltinTasks.HandlerFailure.self) {
            try handler(RawJSON(#"{"message":"boom"}"#), Self.context("fail"))
        }
        #expect(error?.description == "boom")
    }

    @Test("Names are sorted, registering a name twice keeps the last handler, and unknown names have no handler")
    func namesSorted() throws {
        var registry = TaskRegistry()
        #expect(registry.names.isEmpty)
        for name in ["zeta", "alpha", "Mid", "mid", "beta"] {
            registry.registerRaw(name) { json, _ in json }
        }
        registry.registerRaw("alpha") { _, _ in RawJSON("2") }
        #expect(registry.names == ["Mid", "alpha", "beta", "mid", "zeta"])
        #expect(try Self.run(registry, "alpha", "1") == "2")
        #expect(registry.handler(named: "gamma") == nil)
        let builtin = BuiltinTasks.registry.names
        #expect(Set(["echo", "fail", "sha256", "sleep"]).isSubset(of: Set(builtin)))
        #expect(builtin == builtin.sorted())
    }

    @Test("A handler registered without a context still decodes and encodes")
    func contextFreeRegistration() throws {
        var registry = TaskRegistry()
        registry.register("double") { (n: Int) in n * 2 }
        #expect(try Self.run(registry, "double", "21") == "42")
    }

    @Test("The context reports whether the task's deadline has passed")
    func deadline() {
        #expect(!Self.context(deadline: .now + .seconds(60)).isPastDeadline)
        #expect(Self.context(deadline: .now - .milliseconds(1)).isPastDeadline)
    }

    enum Resize: TaskDefinition {
        static let name = "resize-typed"
        typealias Args = ResizeArgs
        typealias Output = ResizeResult
    }

    @Test("a TaskDefinition registers under its name with its types; an async handler is kept apart and replaces a sync one of the same name")
    func typedAndAsyncRegistration() async throws {
        var registry = TaskRegistry()
        registry.register(Resize.self) { args, _ in ResizeResult(path: args.path, pixels: args.size.width * args.size.height) }
        #expect(try Self.run(registry, "resize-typed", #"{"path":"p","size":{"width":2,"height":3}}"#) == #"{"path":"p","pixels":6}"#)
        registry.register(Resize.self) { args, _ async in
            await Task.yield()
            return ResizeResult(path: args.path, pixels: 0)
        }
        #expect(registry.handler(named: "resize-typed") == nil)
        let handler = try #require(registry.asyncHandler(named: "resize-typed"))
        #expect(try await handler(RawJSON(#"{"path":"q","size":{"width":1,"height":1}}"#), Self.context("resize-typed")).text
            == #"{"path":"q","pixels":0}"#)
        #expect(registry.names == ["resize-typed"])
        await #expect(throws: TaskInputError.self) { try await handler(RawJSON(#"{"path":1}"#), Self.context("resize-typed")) }
    }

    @Test("the context's logger carries the task's id, name and attempt")
    func contextLogger() {
        let logger = TaskContext(taskID: "t-9", name: "resize", attempt: 2, threadIndex: 0, deadline: .now).logger
        #expect(logger[metadataKey: "task.id"] == "t-9" && logger[metadataKey: "task.name"] == "resize")
        #expect(logger[metadataKey: "task.attempt"] == "2")
    }
}
