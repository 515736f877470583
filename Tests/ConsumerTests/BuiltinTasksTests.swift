@testable import ConveyorConsumer
import ConveyorBuiltinTasks
import ConveyorProtocol
import Testing

@Suite("Built-in tasks")
struct BuiltinTasksTests {
    // Expected digests computed independently with Python's hashlib:
    //   hashlib.sha256(b"abc").hexdigest()
    //   d = hashlib.sha256(b"abc").digest(); then d = hashlib.sha256(d).digest() N times; d.hex()
    static let abc0 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    static let abc1 = "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
    static let abc1000 = "0a5afc0e280abf3d2254e6cf28d4cb5e3f93d6a4d716278c14303adfdd4deccf"

    @Test("iterations 0 is the SHA-256 of the seed's UTF-8 (the FIPS 180-2 'abc' vector)")
    func zeroIterations() {
        #expect(BuiltinTasks.iteratedSHA256(seed: "abc", iterations: 0) == Self.abc0)
        #expect(BuiltinTasks.iteratedSHA256(seed: "", iterations: 0)
                    == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(BuiltinTasks.iteratedSHA256(seed: "héllo ✓", iterations: 0)
                    == "5657cdef8a85a584e0e961e6f8247cf5d3f8ed21496ed6fdbcfd43a761e94245")
    }

    @Test("iterations 1 hashes the 32 raw digest bytes, not their hex text")
    func oneIteration() {
        #expect(BuiltinTasks.iteratedSHA256(seed: "abc", iterations: 1) == Self.abc1)
    }

    @Test("iterations 1000 matches an independently computed chain")
    func thousandIterations() {
        #expect(BuiltinTasks.iteratedSHA256(seed: "abc", iterations: 1000) == Self.abc1000)
    }

    static func run(_ name: String, _ json: String, attempt: Int = 1) throws -> String {
        let handler = try #require(BuiltinTasks.registry.handler(named: name))
        let context = TaskContext(taskID: "t", name: name, attempt: attempt, threadIndex: 0, deadline: .now + .seconds(60))
        return try handler(RawJSON(json), context).text
    }

    @Test("The sha256 task returns the digest as JSON and refuses negative iterations")
    func sha256Task() throws {
        #expect(try Self.run("sha256", #"{"seed":"abc","iterations":1}"#) == #"{"digest":"\#(Self.abc1)"}"#)
        let error = #expect(throws: BuiltinTasks.HandlerFailure.self) { try Self.run("sha256", #"{"seed":"abc","iterations":-1}"#) }
        #expect(error?.description == "iterations must not be negative")
    }

    @Test("echo returns its args byte for byte, sleep 0 returns slept_ms, fail throws its message")
    func otherTasks() throws {
        let args = #"{ "x" : [1, 2.50, "é"] }"#
        #expect(try Self.run("echo", args) == args)
        #expect(try Self.run("sleep", #"{"ms":0}"#) == #"{"slept_ms":0}"#)
        #expect(throws: BuiltinTasks.HandlerFailure.self) { try Self.run("sleep", #"{"ms":-5}"#) }
        let error = #expect(throws: BuiltinTasks.HandlerFailure.self) { try Self.run("fail", #"{"message":"on purpose"}"#) }
        #expect(error?.description == "on purpose")
    }

    @Test("flaky fails on its first n attempts and then succeeds, reporting the attempt")
    func flakyTask() throws {
        for attempt in 1...2 {
            let error = #expect(throws: BuiltinTasks.HandlerFailure.self) {
                try Self.run("flaky", #"{"failures":2}"#, attempt: attempt)
            }
            #expect(error?.description == "flaky failure on attempt \(attempt) of 3")
        }
        #expect(try Self.run("flaky", #"{"failures":2}"#, attempt: 3) == #"{"attempt":3}"#)
        #expect(try Self.run("flaky", #"{"failures":0}"#, attempt: 1) == #"{"attempt":1}"#)
    }
}
