public import ConveyorConsumer
public import ConveyorProducer
public import ConveyorWebhooks
public import NIOSSL
public import ZeroMQ

/// What `conveyor gateway` was asked to serve (docs/GATEWAY.md).
public struct GatewayConfiguration: Sendable {
    /// The address to listen on: a loopback address unless ``tls`` is given.
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
    /// CURVE client keys by token name, for tokens with `key=FILE` (read by the caller): that
    /// token's producer connects with its own key instead of ``producer``'s.
    public var tokenKeys: [String: CurveKeyPair] = [:]
    /// Serve HTTPS with this certificate and key (PEM files); `nil`: plain HTTP, loopback only.
    public var tls: TLS?
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

    /// The gateway's certificate chain and private key, PEM files (`--tls-cert-file`,
    /// `--tls-key-file`), read when the server starts.
    public struct TLS: Sendable {
        public var certificateFile: String
        public var keyFile: String

        public init(certificateFile: String, keyFile: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }

        /// The server's TLS configuration (TLS 1.2 and later, NIOSSL's defaults otherwise).
        /// - Throws: ``TLSFileError`` naming the file that could not be read.
        public func serverConfiguration() throws -> TLSConfiguration {
            let chain: [NIOSSLCertificate]
            do { chain = try NIOSSLCertificate.fromPEMFile(certificateFile) } catch {
                throw TLSFileError(description: "--tls-cert-file \(certificateFile): not a readable PEM certificate chain (\(error))")
            }
            guard !chain.isEmpty else { throw TLSFileError(description: "--tls-cert-file \(certificateFile): no certificate in the file") }
            let key: NIOSSLPrivateKey
            do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
                throw TLSFileError(description: "--tls-key-file \(keyFile): not a readable PEM private key (\(error))")
            }
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        }
    }

    public struct TLSFileError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init() {}

    /// Why this configuration cannot be served, worded as what to do; `nil` when it can.
    public var problem: String? {
        if tls == nil && !Self.isLoopback(host) {
            return "--listen \(host): without TLS the gateway listens on a loopback address only (127.0.0.1, ::1 or localhost); give --tls-cert-file and --tls-key-file to listen on other addresses"
        }
        if noAuth && !Self.isLoopback(host) { return "--no-auth serves everyone everything: only on a loopback address, never on \(host)" }
        if noAuth && !tokens.isEmpty { return "--no-auth and --token-file exclude each other: give one" }
        if !noAuth && tokens.isEmpty {
            return "no tokens: give --token-file FILE (one token a line: SECRET scopes=submit,read rate=100), or --no-auth on a loopback address"
        }
        if !tokenKeys.isEmpty && producer.curveServerKey == nil {
            return "key= in the token file needs --curve-server-key KEY: per-token keys are CURVE client keys"
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
