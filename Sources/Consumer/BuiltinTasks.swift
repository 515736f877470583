import Crypto
import Foundation

/// The tasks the stock consumer serves, for the demo, the tests and the benchmarks.
public enum BuiltinTasks {
    public struct SleepArgs: Codable, Sendable { public let ms: Int }
    public struct SleepResult: Codable, Sendable { public let slept_ms: Int }
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

    public struct HandlerFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `echo`, `sleep`, `sha256`, `fail` and `flaky` added to `registry`.
    ///
    /// `flaky` {"failures": n} fails on its first n attempts and then succeeds, returning
    /// {"attempt": k}: a deterministic way to exercise retries.
    public static func register(into registry: inout TaskRegistry) {
        registry.registerRaw("echo") { json, _ in json }
        registry.register("sleep") { (args: SleepArgs, context: TaskContext) -> SleepResult in
            guard args.ms >= 0 else { throw HandlerFailure(description: "ms must not be negative") }
            Thread.sleep(forTimeInterval: Double(args.ms) / 1000)
            return SleepResult(slept_ms: args.ms)
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
    }

    /// SHA-256 of the UTF-8 of `seed`, then of the previous 32-byte digest `iterations` times, as
    /// lowercase hex.
    public static func iteratedSHA256(seed: String, iterations: Int) -> String {
        var digest = SHA256.hash(data: Array(seed.utf8))
        for _ in 0..<iterations {
            digest = digest.withUnsafeBytes { SHA256.hash(data: $0) }
        }
        return digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// A registry holding just the built-in tasks.
    public static var registry: TaskRegistry {
        var registry = TaskRegistry()
        register(into: &registry)
        return registry
    }
}
