public import ConveyorConsumer
import ConveyorProducer
import ConveyorWebhooks
import ConveyorProtocol
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
public import ServiceLifecycle

/// The HTTP gateway: Hummingbird's `Application` in front of one ``Producer`` per token, so that
/// the broker sees each token as a producer identity of its own (its fair share of the queue
/// bounds). ``services`` are what to run, in one `ServiceGroup`: the producers first, so they
/// stop after the server that uses them.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    let authenticator: Authenticator
    /// One producer per token, in the order of ``Authenticator/entries``; with `--no-auth`, one.
    let producers: [Producer]
    /// The consumer that serves webhook deliveries, and its sender; `nil` without webhooks.
    let deliveries: (consumer: Consumer, sender: WebhookSender)?
    let logger: Logger
    /// The dashboard's browser sessions and the snapshots it shows (Dashboard/).
    let sessions: DashboardSessions
    let dashboard: DashboardHub
    /// Failed dashboard sign-ins: 10 at once, then 1 a second.
    let signInFailures = TokenBucket(rate: 1, burst: 10)

    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        authenticator = Authenticator(tokens: configuration.tokens)
        let count = configuration.noAuth ? 1 : max(1, configuration.tokens.count)
        producers = (0..<count).map { index in
            var producer = configuration.producer
            if !configuration.noAuth, let keys = configuration.tokenKeys[configuration.tokens[index].name] { producer.curveClientKeys = keys }
            return Producer(configuration: producer, logger: logger)
        }
        sessions = DashboardSessions(secureCookies: configuration.tls != nil)
        dashboard = DashboardHub(producer: producers[0], logger: logger)
        deliveries = configuration.webhooks.map { webhooks in
            let sender = WebhookSender(signer: webhooks.signer, policy: webhooks.policy, attemptTimeout: webhooks.attemptTimeout,
                                       maxRedirects: webhooks.maxRedirects, logger: logger)
            var registry = TaskRegistry()
            sender.register(in: &registry)
            return (Consumer(configuration: webhooks.consumer, registry: registry, logger: logger), sender)
        }
    }

    /// The producers and the HTTP server, to run in one group; `onListening` is called once the
    /// server listens, with the port it bound.
    /// The hub comes last, so that a graceful shutdown (in reverse order) stops it first: that
    /// ends the dashboard's event streams, which would otherwise hold the server's shutdown.
    /// - Throws: when the TLS certificate or key cannot be read.
    public func services(onListening: @escaping @Sendable (Int) async -> Void) throws -> [any Service] {
        let router = Router()
        router.add(middleware: ErrorMiddleware())
        addRoutes(to: router)
        addDashboardRoutes(to: router)
        var server = HTTPServerBuilder.http1()
        if let tls = configuration.tls { server = try .tls(.http1(), tlsConfiguration: tls.serverConfiguration()) }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let consumers: [any Service] = deliveries.map { [$0.consumer] } ?? []
        return producers + consumers + [app, dashboard]
    }

    /// Closes the webhook sender's HTTP client; call once the services have stopped.
    public func shutdown() async {
        try? await deliveries?.sender.client.shutdown()
    }

    /// Who is asking: a token's entry (or none with `--no-auth`) and its producer.
    struct Caller {
        let name: String
        let producer: Producer
    }

    /// The caller of `request`, when it may use `scope`: 401 without a token or with one that is
    /// not on the file, 403 with a token without the scope, 429 past its rate.
    func authorize(_ request: Request, _ scope: Scope) throws(APIError) -> Caller {
        if configuration.noAuth { return Caller(name: "anonymous", producer: producers[0]) }
        guard let secret = Authenticator.bearer(request.headers[.authorization]) else {
            var error = APIError(.unauthorized, "unauthorized", "Authorization: send the header 'Authorization: Bearer TOKEN'")
            error.headers[.wwwAuthenticate] = #"Bearer realm="conveyor""#
            throw error
        }
        guard let index = authenticator.index(presented: secret) else {
            var error = APIError(.unauthorized, "unauthorized", "Authorization: the bearer token is not one of the gateway's tokens")
            error.headers[.wwwAuthenticate] = #"Bearer realm="conveyor", error="invalid_token""#
            throw error
        }
        let entry = authenticator.entries[index]
        guard entry.token.allows(scope) else {
            throw APIError(.forbidden, "forbidden", "Authorization: token '\(entry.token.name)' lacks the \(scope.rawValue) scope this request needs")
        }
        if let wait = entry.bucket.take() {
            var error = APIError(.tooManyRequests, "rate_limited",
                                 "Authorization: token '\(entry.token.name)' is past its rate of \(entry.token.rate) requests a second; retry after the Retry-After seconds")
            error.headers[.retryAfter] = "\(max(1, Int(wait.rounded(.up))))"
            throw error
        }
        return Caller(name: entry.token.name, producer: producers[index])
    }
}
