import ConveyorSystem
import ArgumentParser
import Foundation
import Synchronization
import Logging
import ConveyorProducer
import ConveyorWorker

/// `--broker`, shared by every command that talks to a broker's frontend.
struct BrokerEndpointOptions: ParsableArguments {
    @Option(name: [.customShort("b"), .long], help: "The broker's frontend endpoint.")
    var broker = "tcp://127.0.0.1:5555"

    @Option(name: .long, help: "Seconds to wait for the broker to answer a request.")
    var requestTimeout: Double = 10

    @Option(name: .long, help: "The broker's CURVE public key (Z85), for a broker started with --curve-secret-file.")
    var curveServerKey: String?

    @Option(name: .long, help: "This client's own key pair (a file from conveyor keygen), for a broker that authenticates clients: its public key must be on the broker's clients file.")
    var curveSecretFile: String?

    func validate() throws {
        try Endpoints.validate(broker, option: "--broker", example: "tcp://127.0.0.1:5555")
        if let curveServerKey { _ = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile {
            _ = try CurveKeys.keyPair(file: curveSecretFile)
            guard curveServerKey != nil else {
                throw ValidationError("--curve-secret-file needs --curve-server-key KEY: the broker's public key")
            }
        }
    }

    /// The producer configuration these options describe.
    func producerConfiguration() throws -> ProducerConfiguration {
        var configuration = ProducerConfiguration(broker: broker)
        configuration.requestTimeout = .milliseconds(Int(requestTimeout * 1000))
        // At a terminal, a broker that is not there is said at once (exit 69), not after the timeout.
        configuration.failWhenUnreachable = true
        configuration.onNotice = { _, text in printError("warning: \(text)") }
        if let curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile {
            if let warning = CurveKeys.exposure(of: curveSecretFile) { printError("warning: \(warning)") }
            configuration.curveClientKeys = try CurveKeys.keyPair(file: curveSecretFile)
        }
        return configuration
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes a line to standard output and flushes it, so pipes see each line as it is made.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Exit statuses beyond 0 (success), 1 (a task or request failed) and 64 (bad usage).
enum ExitStatus {
    /// The broker cannot be reached at all: the connection was refused or failed, or its
    /// handshake failed (sysexits' EX_UNAVAILABLE).
    static let unreachable: Int32 = 69

    /// Stopped by Ctrl-C (SIGINT) or SIGTERM, after saying what was left (128 + SIGINT, as shells do).
    static let interrupted: Int32 = 130

    /// Whether `message` says the broker cannot be reached (``ProducerError/unreachable(_:)``).
    static func isUnreachable(_ message: String?) -> Bool {
        guard let message else { return false }
        return message.hasPrefix("cannot reach a broker at ") || message.hasPrefix("the handshake with the broker at ")
    }

    /// Prints `message` and exits 69 when it says the broker cannot be reached.
    static func exitIfUnreachable(_ message: String?) throws {
        guard isUnreachable(message), let message else { return }
        printError("error: \(message)")
        throw ExitCode(unreachable)
    }
}

/// Why the broker could not be reached, noted by result callbacks for the submitting loop.
final class UnreachableNote: Sendable {
    private let text = Mutex<String?>(nil)
    var reason: String? { text.withLock { $0 } }
    func note(_ reason: String?) { text.withLock { $0 = $0 ?? reason } }
}
