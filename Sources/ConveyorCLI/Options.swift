import ConveyorSystem
import ArgumentParser
import Foundation
import Logging
import ConveyorProducer

/// `--broker`, shared by every command that talks to a broker's frontend.
struct BrokerEndpointOptions: ParsableArguments {
    @Option(name: .long, help: "The broker's frontend endpoint.")
    var broker = "tcp://127.0.0.1:5555"

    @Option(name: .long, help: "Seconds to wait for the broker to answer a request.")
    var requestTimeout: Double = 10

    @Option(name: .long, help: "The broker's CURVE public key (Z85), for a broker started with --curve-secret-file.")
    var curveServerKey: String?

    @Option(name: .long, help: "This client's own key pair (a file from conveyor keygen), for a broker that authenticates clients: its public key must be on the broker's clients file.")
    var curveSecretFile: String?

    func validate() throws {
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
        if let curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
        if let curveSecretFile {
            if let warning = CurveKeys.exposure(of: curveSecretFile) { printError("warning: \(warning)") }
            configuration.curveClientKeys = try CurveKeys.keyPair(file: curveSecretFile)
        }
        return configuration
    }
}

/// `--log-level`, shared by every command.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
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
