import ConveyorSystem
import ArgumentParser
import Foundation
import Logging
import ConveyorProducer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

/// A `--log-level` value: swift-log's levels, accepted in any case.
enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical

    init?(argument: String) {
        self.init(rawValue: argument.lowercased())
    }

    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}

/// `--log-level`, shared by every command.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level.")
    var logLevel: LogLevel = .info

    func bootstrap(label: String) -> Logger {
        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
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

/// Ends the process at once with `status`, without joining threads that cannot be joined (and
/// without ArgumentParser's `exit(withError:)`, which a command's own `exit` would name).
func exitProcess(_ status: Int32) -> Never {
    #if canImport(Glibc)
    Glibc.exit(status)
    #elseif canImport(Darwin)
    Darwin.exit(status)
    #else
    fatalError("exit(\(status))")
    #endif
}
