import ConveyorProcess
import ConveyorTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP answer, read whole.
struct HTTPAnswer: CustomStringConvertible {
    let status: Int
    /// Header names in lowercase.
    let headers: [String: String]
    let body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The `{"error": {"code"}}` of an error answer.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
    var description: String { "\(status) \(text)" }
}

/// A plain HTTP/1.1 client over a socket, one connection per request (`Connection: close`), so
/// that a test controls exactly the bytes sent (a body over the limit, malformed JSON, no header).
struct HTTPClient {
    let port: Int
    var token: String?

    func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws -> HTTPAnswer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw GatewayTestError("socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw GatewayTestError("connect to 127.0.0.1:\(port): errno \(errno)") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        var all = headers
        if let token, all["Authorization"] == nil { all["Authorization"] = "Bearer \(token)" }
        if let body {
            if all["Transfer-Encoding"] == nil { all["Content-Length"] = all["Content-Length"] ?? "\(body.count)" }
            all["Content-Type"] = all["Content-Type"] ?? "application/json"
        }
        for (name, value) in all.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        // A server that answers early (413) may close before the body is all written: the
        // answer is read anyway.
        _ = send(all: Data(head.utf8) + (body ?? Data()), to: fd)
        var received = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return try Self.parse(received)
    }

    private func send(all data: Data, to fd: Int32) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    func json(_ method: String, _ path: String, _ object: Any, headers: [String: String] = [:]) throws -> HTTPAnswer {
        try request(method, path, body: try JSONSerialization.data(withJSONObject: object), headers: headers)
    }

    static func parse(_ data: Data) throws -> HTTPAnswer {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else {
            throw GatewayTestError("no HTTP answer: \(String(decoding: data, as: UTF8.self).prefix(200))")
        }
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let words = lines[0].split(separator: " ")
        guard words.count >= 2, let status = Int(words[1]) else { throw GatewayTestError("bad status line: \(lines[0])") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
            if size == 0 { break }
            let start = lineEnd.upperBound
            out.append(rest[start..<min(rest.endIndex, start + size)])
            rest = rest[min(rest.endIndex, start + size + 2)...]
        }
        return out
    }
}

/// A `conveyor gateway` process beside a cluster, with a token file of its own.
struct GatewayProcess {
    static let full = "full-token-0123456789abcdef"
    static let reader = "read-token-0123456789abcdef"
    static let slow = "slow-token-0123456789abcdef"
    static let other = "other-token-0123456789abcdef"
    static let tokens = """
        # the gateway tests' tokens
        \(full) scopes=submit,read rate=100000 name=full
        \(reader) scopes=read rate=100000 name=reader
        \(slow) scopes=submit,read rate=0.5 burst=2 name=slow
        \(other) scopes=admin rate=100000 name=other
        """

    let process: ManagedProcess
    let port: Int
    let directory: String

    static func start(_ cluster: Cluster, arguments: [String] = []) throws -> GatewayProcess {
        let directory = try Cluster.makeTemporaryDirectory(prefix: "conveyor-gateway-")
        let tokenFile = directory + "/tokens"
        try tokens.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "gateway", executable: cluster.executable,
            arguments: ["gateway", "--listen", "127.0.0.1:0", "--broker", cluster.frontend, "--token-file", tokenFile] + arguments)
        guard let line = process.waitForLine(containing: "listening http://", timeout: .seconds(30)),
              let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw GatewayTestError("gateway did not start: \(process.output.joined(separator: "\n"))")
        }
        return GatewayProcess(process: process, port: port, directory: directory)
    }

    func client(_ token: String? = GatewayProcess.full) -> HTTPClient { HTTPClient(port: port, token: token) }

    func stop() {
        let status = process.stop()
        #expect(status == 0, "the gateway should exit 0 on SIGTERM: \(process.output.suffix(20))")
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` with a cluster of `consumers` and a gateway, always tearing both down.
func withGateway<T>(consumers: Int = 1, threads: Int = 2, arguments: [String] = [],
                    _ body: (Cluster, GatewayProcess) async throws -> T) async throws -> T {
    try await withCluster(.init(consumers: consumers, threads: threads)) { cluster in
        let gateway = try GatewayProcess.start(cluster, arguments: arguments)
        defer { gateway.stop() }
        return try await body(cluster, gateway)
    }
}

struct GatewayTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
