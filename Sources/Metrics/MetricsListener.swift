import ConveyorSystem
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a ``MetricsListener`` serves: the broker's or a consumer's figures.
public protocol MetricsEndpoints: Sendable {
    /// The Prometheus text exposition, or `nil` while there is nothing to show yet (503).
    func exposition() -> String?
    /// `/healthz`: `nil` while alive, else why not.
    func unhealthy() -> String?
    /// `/readyz`: `nil` when ready, else why not.
    func unready() -> String?
}

/// `--metrics-listen HOST:PORT`: a small HTTP/1.1 listener on a thread of its own (never a
/// broker's or consumer's I/O thread), answering `GET /metrics` (the Prometheus text format),
/// `GET /healthz` and `GET /readyz` from its ``MetricsEndpoints``. One request per connection;
/// anything else gets 404 or 405. Plain sockets, no HTTP stack: the libraries stay free of one.
public final class MetricsListener: Sendable {
    public let port: Int
    private let descriptor: Int32
    private let stop = Atomic<Bool>(false)

    /// Binds `address` (`HOST:PORT`, port 0 for any free one) and starts serving `endpoints`.
    public init(address: String, endpoints: any MetricsEndpoints) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw ListenerError("--metrics-listen must look like HOST:PORT (for example 127.0.0.1:9464), not '\(address)'")
        }
        let host = String(address[..<colon])
        var ipv4 = in_addr()
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &ipv4) == 1 else {
            throw ListenerError("--metrics-listen needs an IPv4 address (for example 127.0.0.1:9464), not '\(host)'")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ListenerError("cannot make a socket for --metrics-listen: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr = ipv4
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ListenerError("cannot listen on --metrics-listen \(address): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.descriptor = fd
        let thread = Thread { [self] in
            setCurrentThreadName("conveyor-metrics")
            serve(endpoints)
        }
        thread.start()
    }

    /// `http://HOST:PORT/metrics` for the address it was given (with the port it got).
    public static func url(address: String, port: Int) -> String {
        "http://\(address.split(separator: ":").dropLast().joined(separator: ":")):\(port)/metrics"
    }

    public func close() {
        stop.store(true, ordering: .relaxed)
    }

    private func serve(_ endpoints: any MetricsEndpoints) {
        defer { Glibc.close(descriptor) }
        while !stop.load(ordering: .relaxed) {
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&waiting, 1, 200) > 0 else { continue }
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            answer(client, endpoints)
            Glibc.close(client)
        }
    }

    /// Reads one request (its head, 8 KiB at most, 2 s at most) and answers it.
    private func answer(_ client: Int32, _ endpoints: any MetricsEndpoints) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while head.count < 8192, !head.ends(with: Array("\r\n\r\n".utf8)) {
            let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            head += buffer[0..<count]
            if head.count >= 4, String(decoding: head, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let requestLine = String(decoding: head, as: UTF8.self).split(separator: "\r\n", maxSplits: 1).first ?? ""
        let parts = requestLine.split(separator: " ")
        let (status, type, body): (String, String, String)
        if parts.count < 2 {
            (status, type, body) = ("400 Bad Request", "text/plain", "a request line is METHOD PATH HTTP/1.1\n")
        } else if parts[0] != "GET" && parts[0] != "HEAD" {
            (status, type, body) = ("405 Method Not Allowed", "text/plain", "only GET\n")
        } else {
            switch parts[1].split(separator: "?").first ?? "" {
            case "/metrics":
                if let text = endpoints.exposition() {
                    (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
                } else {
                    (status, type, body) = ("503 Service Unavailable", "text/plain", "no figures yet: starting\n")
                }
            case "/healthz":
                let problem = endpoints.unhealthy()
                (status, type, body) = problem.map { ("503 Service Unavailable", "text/plain", $0 + "\n") } ?? ("200 OK", "text/plain", "ok\n")
            case "/readyz":
                let problem = endpoints.unready()
                (status, type, body) = problem.map { ("503 Service Unavailable", "text/plain", "not ready: " + $0 + "\n") } ?? ("200 OK", "text/plain", "ready\n")
            default:
                (status, type, body) = ("404 Not Found", "text/plain", "GET /metrics, /healthz or /readyz\n")
            }
        }
        let bytes = Array(body.utf8)
        var response = Array("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n".utf8)
        if parts.first != "HEAD" { response += bytes }
        response.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = send(client, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return }
                offset += sent
            }
        }
    }

    public struct ListenerError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
