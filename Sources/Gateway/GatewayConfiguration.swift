public import ConveyorConsumer
public import ConveyorProducer
public import ConveyorWebhooks

/// What `conveyor gateway` was asked to serve (docs/GATEWAY.md).
public struct GatewayConfiguration: Sendable {
    /// The address to listen on: a loopback address (no TLS in this version).
    public var host = "127.0.0.1"
    /// 0: a port the OS picks (the gateway prints the one it bound).
    public var port = 8080
    /// The tokens; empty only with ``noAuth``.
    public var tokens: [GatewayToken] = []
    /// Serve without tokens (loopback only): every request may do everything, unlimited.
    public var noAuth = false
    /// The largest request body taken; larger ones get 413.
    public var maxBodyBytes = 1 << 20
    /// The most tasks in one `POST /v1/tasks/batch`.
    public var maxBatch = 1_000
    /// The longest `?wait=` of `GET /v1/tasks/{id}`, seconds.
    public var maxWaitSeconds = 60.0
    /// The broker connection each token's producer is made with.
    public var producer = ProducerConfiguration()
    /// Webhook deliveries (docs/GATEWAY.md, "Webhook callbacks"); `nil`: callback URLs are refused.
    public var webhooks: Webhooks?

    /// What delivering webhooks takes: the signing secret, where callbacks may go, and the
    /// consumer connection (to the broker's backend) that serves `conveyor.webhook`.
    public struct Webhooks: Sendable {
        public var signer: WebhookSigner
        public var policy: CallbackPolicy
        public var consumer: ConsumerConfiguration
        public var attemptTimeout: Duration = .seconds(10)
        public var maxRedirects = 0

        public init(signer: WebhookSigner, policy: CallbackPolicy, consumer: ConsumerConfiguration) {
            self.signer = signer
            self.policy = policy
            self.consumer = consumer
        }
    }

    public init() {}

    /// Why this configuration cannot be served, worded as what to do; `nil` when it can.
    public var problem: String? {
        if !Self.isLoopback(host) {
            return "--listen \(host): without TLS the gateway listens on a loopback address only (127.0.0.1, ::1 or localhost); TLS (--tls-cert-file/--tls-key-file) is not in this version, so put a TLS proxy in front of it for other addresses"
        }
        if noAuth && !tokens.isEmpty { return "--no-auth and --token-file exclude each other: give one" }
        if !noAuth && tokens.isEmpty {
            return "no tokens: give --token-file FILE (one token a line: SECRET scopes=submit,read rate=100), or --no-auth on a loopback address"
        }
        if maxBodyBytes < 1024 { return "--max-body-bytes must be at least 1024" }
        return nil
    }

    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
