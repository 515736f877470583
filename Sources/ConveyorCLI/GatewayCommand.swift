import ArgumentParser
import ConveyorGateway
import ConveyorSystem
import ConveyorWorker
import Logging

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve an HTTP and JSON front end to a broker: submit, follow, cancel and list tasks (docs/GATEWAY.md).",
        discussion: """
            Routes: POST /v1/tasks, POST /v1/tasks/batch, GET /v1/tasks/{id}[?wait=S], DELETE /v1/tasks/{id}, \
            GET /v1/tasks?state=&name=&limit=&cursor=, GET /v1/stats, GET /healthz, GET /openapi.json. \
            Every request but /healthz and /openapi.json needs 'Authorization: Bearer TOKEN' with a token \
            of --token-file: one a line, `SECRET scopes=submit,read,admin rate=100 [burst=N] [name=NAME]`. \
            Each token is its own producer at the broker (its own fair share of the queue bounds).
            Without TLS (not in this version) the gateway listens on a loopback address only. It prints \
            `listening http://HOST:PORT` once it listens (--listen 127.0.0.1:0: a port the OS picks).
            """)

    @Option(help: ArgumentHelp("The address to listen on: a loopback HOST:PORT.", valueName: "host:port"))
    var listen = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("The bearer tokens, one a line: SECRET scopes=submit,read,admin rate=100 [burst=N] [name=NAME].", valueName: "file"))
    var tokenFile: String?

    @Flag(help: "Serve without tokens: every request may do everything. Only on a loopback address.")
    var noAuth = false

    @Option(help: "The largest request body, bytes; larger ones get 413.")
    var maxBodyBytes = 1 << 20

    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try address()
        if noAuth && tokenFile != nil { throw ValidationError("--no-auth and --token-file exclude each other: give one") }
        if !noAuth && tokenFile == nil {
            throw ValidationError("give --token-file FILE (one token a line: SECRET scopes=submit,read rate=100), or --no-auth on a loopback address")
        }
        guard maxBodyBytes >= 1024, maxBodyBytes <= 64 << 20 else { throw ValidationError("--max-body-bytes must be from 1024 to 67108864") }
    }

    /// `--listen` as host and port.
    private func address() throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port), colon != listen.startIndex else {
            throw ValidationError("--listen must be HOST:PORT, such as 127.0.0.1:8080, not '\(listen)'")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard GatewayConfiguration.isLoopback(host) else {
            throw ValidationError("--listen \(listen): without TLS the gateway listens on a loopback address only (127.0.0.1, ::1, localhost); TLS is not in this version: put a TLS proxy in front for other addresses")
        }
        return (host, port)
    }

    func run() async throws {
        let logger = logging.bootstrap(label: "conveyor.gateway")
        var configuration = GatewayConfiguration()
        (configuration.host, configuration.port) = try address()
        configuration.noAuth = noAuth
        configuration.maxBodyBytes = maxBodyBytes
        if let tokenFile {
            do {
                configuration.tokens = try TokenFile.load(path: tokenFile)
            } catch {
                printError("error: \(error)")
                throw ExitCode.validationFailure
            }
        }
        if let problem = configuration.problem {
            printError("error: \(problem)")
            throw ExitCode.validationFailure
        }
        var producer = try endpoint.producerConfiguration()
        // A server waits for its broker and reconnects; it does not give up as a command does.
        producer.failWhenUnreachable = false
        producer.onNotice = nil
        configuration.producer = producer
        let gateway = Gateway(configuration: configuration, logger: logger)
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let (broker, tokens) = (producer.broker, configuration.tokens.count)
        try await ConveyorServices.run(gateway.services(onListening: { port in
            printLine("listening http://\(host):\(port)")
            logger.info("gateway listening", metadata: ["address": "\(host):\(port)", "broker": "\(broker)", "tokens": "\(tokens)"])
        }), logger: logger)
    }
}
