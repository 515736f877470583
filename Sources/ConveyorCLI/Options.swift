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

    func validate() throws {
        if let curveServerKey { _ = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
    }

    /// The producer configuration these options describe.
    func producerConfiguration() throws -> ProducerConfiguration {
        var configuration = ProducerConfiguration(broker: broker)
        configuration.requestTimeout = .milliseconds(Int(requestTimeout * 1000))
        if let curveServerKey { configuration.curveServerKey = try CurveKeys.key(z85: curveServerKey, option: "--curve-server-key") }
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
