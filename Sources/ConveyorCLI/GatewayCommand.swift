import ArgumentParser
import ConveyorGateway
import ConveyorSystem
import ConveyorConsumer
import ConveyorWebhooks
import ConveyorWorker
import Foundation
import Logging

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve an HTTP and JSON front end to a broker: submit, follow, cancel and list tasks (docs/GATEWAY.md).",
        discussion: """
            Routes: POST /v1/tasks, POST /v1/tasks/batch, GET /v1/tasks/{id}[?wait=S], DELETE /v1/tasks/{id}, \
            GET /v1/tasks?state=&name=&limit=&cursor=, GET /v1/stats, GET /healthz, GET /openapi.json. \
            Every request but /healthz and /openapi.json needs 'Authorization: Bearer TOKEN' with a token \
            of --token-file: one a line, `SECRET scopes=submit,read,admin rate=100 [burst=N] [name=NAME] [key=CURVE_KEY_FILE]`. \
            Each token is its own producer at the broker (its own fair share of the queue bounds).
            Without TLS the gateway listens on a loopback address only; with --tls-cert-file and \
            --tls-key-file it serves HTTPS on any address. It prints `listening http(s)://HOST:PORT` \
            once it listens (--listen 127.0.0.1:0: a port the OS picks). The dashboard is at / (sign \
            in with a token that has the read scope; actions need admin).
            """)

    @Option(help: ArgumentHelp("The address to listen on: a loopback HOST:PORT.", valueName: "host:port"))
    var listen = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("The bearer tokens, one a line: SECRET scopes=submit,read,admin rate=100 [burst=N] [name=NAME] [key=CURVE_KEY_FILE].", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM); needs --tls-key-file. Then --listen may be any address.", valueName: "file"))
    var tlsCertFile: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert-file.", valueName: "file"))
    var tlsKeyFile: String?

    @Flag(help: "Serve without tokens: every request may do everything. Only on a loopback address.")
    var noAuth = false

    @Option(help: "The largest request body, bytes; larger ones get 413.")
    var maxBodyBytes = 1 << 20

    @Option(help: ArgumentHelp("Deliver webhook callbacks, signed with this secret (Standard Webhooks: whsec_ and base64 of 24-64 bytes). Without it callback_url is refused.", valueName: "file"))
    var webhookSecretFile: String?

    @Option(help: ArgumentHelp("Where callbacks may go: host names, *.domain, addresses or networks (10.0.0.0/8), comma-separated or repeated. Internal addresses only when named.", valueName: "entry"))
    var callbackAllow: [String] = []

    @Option(help: "The broker's backend endpoint, where the gateway serves webhook deliveries as a consumer (with --webhook-secret-file).")
    var backend = "tcp://127.0.0.1:5556"

    @Option(help: "Seconds one delivery attempt may take before it counts as failed (and is retried).")
    var webhookTimeout: Double = 10

    @Option(help: "Redirects a delivery follows, each checked against --callback-allow (0: none; a 3xx is then a failure).")
    var webhookMaxRedirects = 0

    @Option(help: "Deliveries in flight at once.")
    var webhookConcurrency = 32

    @OptionGroup var endpoint: BrokerEndpointOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try address()
        if noAuth && tokenFile != nil { throw ValidationError("--no-auth and --token-file exclude each other: give one") }
        if !noAuth && tokenFile == nil {
            throw ValidationError("give --token-file FILE (one token a line: SECRET scopes=submit,read rate=100), or --no-auth on a loopback address")
        }
        if (tlsCertFile == nil) != (tlsKeyFile == nil) { throw ValidationError("--tls-cert-file and --tls-key-file go together: give both, or neither") }
        guard maxBodyBytes >= 1024, maxBodyBytes <= 64 << 20 else { throw ValidationError("--max-body-bytes must be from 1024 to 67108864") }
        if webhookSecretFile != nil {
            try Endpoints.validate(backend, option: "--backend", example: "tcp://127.0.0.1:5556")
            if callbackAllow.isEmpty {
                throw ValidationError("--webhook-secret-file needs --callback-allow ENTRY: the hosts (or networks) callbacks may go to")
            }
            do { _ = try CallbackPolicy(allowing: callbackAllow) } catch { throw ValidationError(error.description) }
        } else if !callbackAllow.isEmpty {
            throw ValidationError("--callback-allow needs --webhook-secret-file FILE: without a secret no webhook is delivered")
        }
        guard webhookTimeout > 0, webhookTimeout <= 300 else { throw ValidationError("--webhook-timeout must be from 0 to 300 seconds") }
        guard (0...10).contains(webhookMaxRedirects) else { throw ValidationError("--webhook-max-redirects must be from 0 to 10") }
        guard (1...10_000).contains(webhookConcurrency) else { throw ValidationError("--webhook-concurrency must be from 1 to 10000") }
    }

    /// `--listen` as host and port.
    private func address() throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port), colon != listen.startIndex else {
            throw ValidationError("--listen must be HOST:PORT, such as 127.0.0.1:8080, not '\(listen)'")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard tlsCertFile != nil || GatewayConfiguration.isLoopback(host) else {
            throw ValidationError("--listen \(listen): without TLS the gateway listens on a loopback address only (127.0.0.1, ::1, localhost); give --tls-cert-file and --tls-key-file to listen on other addresses")
        }
        if noAuth && !GatewayConfiguration.isLoopback(host) {
            throw ValidationError("--no-auth serves everyone everything: only on a loopback address, not \(listen)")
        }
        return (host, port)
    }

    func run() async throws {
        let logger = logging.bootstrap(label: "conveyor.gateway")
        var configuration = GatewayConfiguration()
        (configuration.host, configuration.port) = try address()
        configuration.noAuth = noAuth
        if let tlsCertFile, let tlsKeyFile {
            let tls = GatewayConfiguration.TLS(certificateFile: tlsCertFile, keyFile: tlsKeyFile)
            do { _ = try tls.serverConfiguration() } catch {
                printError("error: \(error)")
                throw ExitCode.validationFailure
            }
            configuration.tls = tls
        }
        configuration.maxBodyBytes = maxBodyBytes
        if let tokenFile {
            do {
                configuration.tokens = try TokenFile.load(path: tokenFile)
            } catch {
                printError("error: \(error)")
                throw ExitCode.validationFailure
            }
        }
        var producer = try endpoint.producerConfiguration()
        for token in configuration.tokens {
            guard let keyFile = token.keyFile else { continue }
            do {
                if let warning = CurveKeys.exposure(of: keyFile) { printError("warning: token '\(token.name)': \(warning)") }
                configuration.tokenKeys[token.name] = try CurveKeys.keyPair(file: keyFile)
            } catch {
                printError("error: token '\(token.name)': key=\(keyFile): \(error)")
                throw ExitCode.validationFailure
            }
        }
        if let webhookSecretFile {
            do {
                let secret = try String(contentsOfFile: webhookSecretFile, encoding: .utf8)
                var consumer = ConsumerConfiguration()
                consumer.backend = backend
                consumer.threads = webhookConcurrency
                // The same keys as the producers: one identity, which needs the consume and gateway roles.
                consumer.curveServerKey = producer.curveServerKey
                consumer.curveClientKeys = producer.curveClientKeys
                var webhooks = GatewayConfiguration.Webhooks(signer: try WebhookSigner(secret: secret),
                                                             policy: try CallbackPolicy(allowing: callbackAllow), consumer: consumer)
                webhooks.attemptTimeout = .milliseconds(Int(webhookTimeout * 1000))
                webhooks.maxRedirects = webhookMaxRedirects
                configuration.webhooks = webhooks
            } catch {
                printError("error: --webhook-secret-file \(webhookSecretFile): \(error)")
                throw ExitCode.validationFailure
            }
        }
        // A server waits for its broker and reconnects; it does not give up as a command does.
        producer.failWhenUnreachable = false
        producer.onNotice = nil
        configuration.producer = producer
        if let problem = configuration.problem {
            printError("error: \(problem)")
            throw ExitCode.validationFailure
        }
        let gateway = Gateway(configuration: configuration, logger: logger)
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let (broker, tokens) = (producer.broker, configuration.tokens.count)
        let webhooks = configuration.webhooks.map { "\($0.policy)" } ?? "off"
        let scheme = configuration.tls == nil ? "http" : "https"
        try await ConveyorServices.run(gateway.services(onListening: { port in
            printLine("listening \(scheme)://\(host):\(port)")
            logger.info("gateway listening", metadata: ["address": "\(host):\(port)", "broker": "\(broker)", "tokens": "\(tokens)",
                                                         "webhooks": "\(webhooks)"])
        }), logger: logger)
        await gateway.shutdown()
    }
}
