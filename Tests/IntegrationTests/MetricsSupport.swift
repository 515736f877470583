import ConveyorProcess
import Foundation
import Testing

/// Scrapes with Python's standard library and parses with `prometheus_client`'s own parser (not
/// with code of ours), so that what a Prometheus server would read is what the tests check.
enum Scrape {
    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `metrics http://…/metrics` line a process printed.
    static func announced(_ process: ManagedProcess) throws -> String {
        let line = try #require(process.waitForLine(containing: "metrics http://", timeout: .seconds(20)), "\(process.output)")
        return String(line.dropFirst("metrics ".count))
    }

    /// `url` parsed: "name{label=value,...}" (labels sorted) → value. Fails unless the answer is 200.
    static func get(_ url: String) throws -> [String: Double] {
        let out = try run(parseScript, url)
        #expect(out["status"] == 200, "\(url): \(out)")
        return out
    }

    /// The HTTP status of a GET of `url`.
    static func status(_ url: String) throws -> Int {
        Int(try run(parseScript, url, "status")["status"] ?? 0)
    }

    private static let parseScript = """
        import json, sys, urllib.request, urllib.error
        try:
            response = urllib.request.urlopen(sys.argv[1], timeout=5)
            status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, ""
        out = {"status": status}
        if len(sys.argv) < 3 and status == 200:
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(body):
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    out[sample.name + "{" + labels + "}"] = sample.value
        print(json.dumps(out))
        """

    private static func run(_ script: String, _ arguments: String...) throws -> [String: Double] {
        let process = try ManagedProcess(name: "scrape", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                         arguments: ["python3", "-c", script] + arguments)
        #expect(process.waitForExit(timeout: .seconds(20)) == 0, "\(process.output)")
        let line = try #require(process.waitForLine(timeout: .seconds(2)) { $0.hasPrefix("{") })
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
    }

    /// A poller of `base`/readyz and /healthz every 5 ms, from before anything listens there until
    /// /readyz says 200 (at most 60 s): prints `readyz S healthz S` at each change.
    static func pollUntilReady(_ base: String) throws -> ManagedProcess {
        let script = """
            import sys, time, urllib.request, urllib.error
            def get(path):
                try:
                    return str(urllib.request.urlopen(sys.argv[1] + path, timeout=2).status)
                except urllib.error.HTTPError as error:
                    return str(error.code)
                except Exception:
                    return "down"
            last, end = None, time.time() + 60
            while time.time() < end:
                now = f"readyz {get('/readyz')} healthz {get('/healthz')}"
                if now != last:
                    print(now, flush=True)
                    last = now
                if now.startswith("readyz 200"):
                    sys.exit(0)
                time.sleep(0.005)
            sys.exit(1)
            """
        return try ManagedProcess(name: "poller", executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", "-c", script, base])
    }

    /// The series listed in the first column of the table under `### heading` in docs/OBSERVABILITY.md.
    static func documented(_ heading: String) throws -> [String] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/OBSERVABILITY.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "### " + heading).dropFirst().first, "no section \(heading)")
        let body = section.components(separatedBy: "\n#").first ?? section
        let names = body.split(separator: "\n").filter { $0.hasPrefix("| `conveyor_") }.compactMap { row in
            row.split(separator: "`").dropFirst().first.map(String.init)
        }
        #expect(!names.isEmpty, "no series under \(heading)")
        return names
    }

    /// Whether a scrape has samples of `series` (a counter, gauge or histogram family).
    static func has(_ scrape: [String: Double], _ series: String) -> Bool {
        scrape.keys.contains { key in
            key.hasPrefix(series + "{") || key.hasPrefix(series + "_count{") || key.hasPrefix(series + "_bucket{")
        }
    }

    /// A TCP port nothing listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound, "no free port: \(String(cString: strerror(errno)))")
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
