import COpenSSL
public import ConveyorConsumer
import Foundation

/// The tasks the stock consumer serves, for the demo, the tests and the benchmarks.
public enum BuiltinTasks {
    /// `sleep`'s args: how long, and whether to say when it started and ended.
    public struct SleepArgs: Codable, Sendable {
        public let ms: Int
        public let times: Bool?
    }
    /// `sleep`'s result; with `"times": true`, its start and end (wall clock, ms since the epoch):
    /// what a test of limits needs to see how many ran at once.
    public struct SleepResult: Codable, Sendable {
        public let slept_ms: Int
        public var started_ms: Double?
        public var ended_ms: Double?
    }
    public struct SHA256Args: Codable, Sendable {
        public let seed: String
        public let iterations: Int
        public init(seed: String, iterations: Int) {
            self.seed = seed
            self.iterations = iterations
        }
    }
    public struct SHA256Result: Codable, Sendable { public let digest: String }
    public struct FailArgs: Codable, Sendable { public let message: String }
    public struct FlakyArgs: Codable, Sendable { public let failures: Int }
    public struct FlakyResult: Codable, Sendable { public let attempt: Int }
    /// `trace`'s args: none (any object).
    public struct TraceArgs: Codable, Sendable {}
    /// `trace`'s result: the trace context the handler got; keys absent when the task has none.
    public struct TraceResult: Codable, Sendable, Equatable {
        public let trace_id: String?
        public let traceparent: String?
        public let tracestate: String?
    }

    public struct HandlerFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `echo`, `sleep`, `sha256`, `fail`, `flaky` and `trace` added to `registry`.
    ///
    /// `flaky` {"failures": n} fails on its first n attempts and then succeeds, returning
    /// {"attempt": k}: a deterministic way to exercise retries. `trace` {} returns the trace context
    /// its handler got, {"trace_id", "traceparent", "tracestate"} ({} for a task without one): a
    /// way to check that a submitter's trace reaches the consumers.
    public static func register(into registry: inout TaskRegistry) {
        registry.registerRaw("echo") { json, _ in json }
        registry.register("sleep") { (args: SleepArgs, context: TaskContext) -> SleepResult in
            guard args.ms >= 0 else { throw HandlerFailure(description: "ms must not be negative") }
            let started = Date().timeIntervalSince1970 * 1000
            Thread.sleep(forTimeInterval: Double(args.ms) / 1000)
            guard args.times == true else { return SleepResult(slept_ms: args.ms) }
            return SleepResult(slept_ms: args.ms, started_ms: started, ended_ms: Date().timeIntervalSince1970 * 1000)
        }
        registry.register("sha256") { (args: SHA256Args) -> SHA256Result in
            guard args.iterations >= 0 else { throw HandlerFailure(description: "iterations must not be negative") }
            return SHA256Result(digest: iteratedSHA256(seed: args.seed, iterations: args.iterations))
        }
        registry.register("fail") { (args: FailArgs) -> Bool in
            throw HandlerFailure(description: args.message)
        }
        registry.register("flaky") { (args: FlakyArgs, context: TaskContext) -> FlakyResult in
            guard context.attempt > args.failures else {
                throw HandlerFailure(description: "flaky failure on attempt \(context.attempt) of \(args.failures + 1)")
            }
            return FlakyResult(attempt: context.attempt)
        }
        registry.register("trace") { (_: TraceArgs, context: TaskContext) -> TraceResult in
            TraceResult(trace_id: context.traceID, traceparent: context.traceparent, tracestate: context.tracestate)
        }
    }

    /// SHA-256 of the UTF-8 of `seed`, then of the previous 32-byte digest `iterations` times, as
    /// lowercase hex.
    ///
    /// OpenSSL's `SHA256_Init/Update/Final` on one context and one digest buffer: no allocation per
    /// hash. (swift-crypto's `SHA256` allocates a context object per hash, which made this loop
    /// three times slower than the same loop in C.)
    public static func iteratedSHA256(seed: String, iterations: Int) -> String {
        var context = SHA256_CTX()
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        digest.withUnsafeMutableBufferPointer { digest in
            let seedBytes = Array(seed.utf8)
            SHA256_Init(&context)
            SHA256_Update(&context, seedBytes, seedBytes.count)
            SHA256_Final(digest.baseAddress, &context)
            for _ in 0..<max(0, iterations) {
                SHA256_Init(&context)
                SHA256_Update(&context, digest.baseAddress, digest.count)
                SHA256_Final(digest.baseAddress, &context)
            }
        }
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// A registry holding just the built-in tasks.
    public static var registry: TaskRegistry {
        var registry = TaskRegistry()
        register(into: &registry)
        return registry
    }
}
