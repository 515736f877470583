public import AsyncHTTPClient
public import ConveyorConsumer
import ConveyorProtocol
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// Serves webhook deliveries (the reserved task name `conveyor.webhook`, docs/GATEWAY.md): POSTs
/// a delivery's event to its callback URL, signed (``WebhookSigner``), to an address the
/// ``CallbackPolicy`` allows, and says how it went so that the broker retries what may succeed
/// later and stops on what will not:
///
/// | receiver's answer | the delivery |
/// | --- | --- |
/// | 2xx | succeeded |
/// | 408, 429, 5xx, a timeout, no connection | retried: 5 s after the first failure, doubling, 8 attempts; then a dead letter |
/// | 3xx (redirects are not followed unless `maxRedirects` > 0, each hop checked again), other 4xx, an address the policy refuses | failed, not retried |
///
/// The body is the event exactly as the broker wrote it; `webhook-id` is the delivery's task id
/// (the same on every attempt, so a receiver can drop a duplicate), `webhook-timestamp` the
/// attempt's time.
public final class WebhookSender: Sendable {
    public let client: HTTPClient
    let signer: WebhookSigner
    let policy: CallbackPolicy
    let attemptTimeout: Duration
    let maxRedirects: Int
    let logger: Logger

    public init(signer: WebhookSigner, policy: CallbackPolicy, attemptTimeout: Duration = .seconds(10), maxRedirects: Int = 0,
                logger: Logger) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5), read: .init(attemptTimeout))
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.signer = signer
        self.policy = policy
        self.attemptTimeout = attemptTimeout
        self.maxRedirects = maxRedirects
        self.logger = logger
    }

    /// Registers the delivery handler (async: a slow receiver holds no thread) in `registry`.
    public func register(in registry: inout TaskRegistry) {
        registry.registerRaw(Webhook.taskName) { [self] (args: RawJSON, context: TaskContext) async throws -> RawJSON in
            try await deliver(args: args.bytes, id: context.taskID, attempt: UInt32(clamping: context.attempt))
        }
    }

    /// A failure that a later attempt may get past (a retry).
    struct Retry: Error, CustomStringConvertible {
        let description: String
    }

    /// One attempt. Returns `{"status", "url", "attempt"}`; throws ``Retry`` to be retried and
    /// `TaskInputError` for a failure that will not get better.
    func deliver(args: [UInt8], id: String, attempt: UInt32) async throws -> RawJSON {
        let (url, event) = try Self.parse(args)
        var target = url
        var hops = 0
        while true {
            guard let host = CallbackPolicy.host(of: target) else { throw Self.final("callback URL \(target) has no host") }
            let addresses = await CallbackPolicy.resolve(host)
            guard let first = addresses.first else { throw Retry(description: "\(host) does not resolve") }
            for address in addresses {
                if let problem = policy.problem(address: address, of: host) { throw Self.final("refused: \(problem)") }
            }
            let timestamp = Int(Date().timeIntervalSince1970)
            var request = HTTPClientRequest(url: Self.pinned(target, host: host, to: first))
            request.method = .POST
            if let authority = URLComponents(string: target).map(Self.authority) { request.headers.add(name: "Host", value: authority) }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "Conveyor-Webhooks/\(ConveyorVersion.number)")
            request.headers.add(name: "webhook-id", value: id)
            request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
            request.headers.add(name: "webhook-signature", value: signer.signature(id: id, timestamp: timestamp, body: event))
            request.body = .bytes(ByteBuffer(bytes: event))
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .init(attemptTimeout))
            } catch {
                throw Retry(description: "POST \(target): \(error)")
            }
            let excerpt = String(buffer: (try? await response.body.collect(upTo: 4_096)) ?? ByteBuffer()).prefix(200)
            let code = Int(response.status.code)
            switch code {
            case 200..<300:
                logger.debug("webhook delivered", metadata: ["webhook.id": "\(id)", "url": "\(target)", "status": "\(code)"])
                return RawJSON("{\"status\":\(code),\"url\":\(JSONText.quoted(target)),\"attempt\":\(attempt)}")
            case 300..<400:
                guard hops < maxRedirects, let location = response.headers.first(name: "Location"),
                      let next = URL(string: location, relativeTo: URL(string: target))?.absoluteString else {
                    throw Self.final("POST \(target) answered \(code) (a redirect); deliveries do not follow redirects (--webhook-max-redirects)")
                }
                if let problem = policy.problem(url: next) { throw Self.final("redirect from \(target) refused: \(problem)") }
                hops += 1
                target = next
            case 408, 429, 500...:
                throw Retry(description: "POST \(target) answered \(code): \(excerpt)")
            default:
                throw Self.final("POST \(target) answered \(code): \(excerpt)")
            }
        }
    }

    private static func final(_ message: String) -> TaskInputError {
        TaskInputError(kind: .handlerError, message: message)
    }

    /// The URL and the event bytes of a delivery's args, as the broker wrote them (Webhook.swift).
    static func parse(_ args: [UInt8]) throws -> (url: String, event: [UInt8]) {
        struct Head: Decodable { let url: String }
        guard let head = try? JSONDecoder().decode(Head.self, from: Data(args)) else {
            throw final("delivery args have no url: not made by a broker")
        }
        // `,"event":` cannot occur inside the quoted strings before it (their quotes are escaped).
        let marker = Array(",\"event\":".utf8)
        guard let start = Self.index(of: marker, in: args), args.last == UInt8(ascii: "}") else {
            throw final("delivery args have no event: not made by a broker")
        }
        return (head.url, Array(args[(start + marker.count)..<(args.count - 1)]))
    }

    private static func index(of marker: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        for index in 0...(bytes.count - marker.count) where bytes[index] == marker[0] {
            if bytes[index..<(index + marker.count)].elementsEqual(marker) { return index }
        }
        return nil
    }

    /// For `http`, the URL with its host replaced by the address checked (so the connection goes
    /// where the policy looked; the Host header keeps the name). `https` keeps the name, for the
    /// certificate's check: the client resolves it again (docs/GATEWAY.md says so).
    static func pinned(_ url: String, host: String, to address: [UInt8]) -> String {
        guard var components = URLComponents(string: url), components.scheme?.lowercased() == "http" else { return url }
        let text = CallbackPolicy.text(address)
        components.host = address.count == 16 ? "[\(text)]" : text
        if address.count == 16 { components.percentEncodedHost = "[\(text)]" }
        return components.string ?? url
    }

    private static func authority(_ components: URLComponents) -> String {
        let host = components.host ?? ""
        return components.port.map { "\(host):\($0)" } ?? host
    }
}
