@testable import ConveyorBroker
import ConveyorProtocol
import Foundation
import Testing
import ZeroMQ

/// `STATS`' `names` and `latency` (docs/PROTOCOL.md §6.7), driven through the engine.
@Suite("Per-name figures and the latency histogram in STATS")
struct NameFiguresTests {
    let engine = BrokerEngine<RecordingOutbox>.recording()
    var wall: UInt64 = 1_800_000_000_000_000_000
    var monotonic: UInt64 = 5_000_000_000
    var now: BrokerInstant { BrokerInstant(wall: wall, monotonic: monotonic) }
    let producer: [UInt8] = [0x50, 1]
    let consumerKey: [UInt8] = [0x43, 1]

    func submit(_ id: String, _ name: String = "sleep") {
        engine.handleFrontend(Wire.envelope(from: producer, .submit,
                                            [Wire.bytes(id), Wire.bytes(name), TaskOptions().encoded(for: .current), Wire.bytes("{}")]), now: now)
    }

    func done(_ id: String, _ status: String) {
        engine.handleBackend(Wire.envelope(from: consumerKey, .done,
                                           [Wire.bytes(id), Wire.bytes(status), Wire.bytes("{}"), Wire.bytes("{}")]), now: now)
    }

    @Test("each name's queued, running, reserved and outcomes; the latency of tasks that ran to a result, by power-of-two bucket")
    mutating func figures() throws {
        let info = ReadyInfo(capacity: 3, tasks: ["sleep"], host: "h", pid: 1, threads: 1, heartbeatMilliseconds: 1000)
        engine.handleBackend(Wire.envelope(from: consumerKey, .ready, [Array(try JSONEncoder().encode(info))]), now: now)
        for id in ["a", "b", "c", "d"] { submit(id) }
        submit("x", "unserved")
        var names = try #require(engine.statistics().names)
        #expect(names["sleep"]?.running == 1 && names["sleep"]?.reserved == 2 && names["sleep"]?.queued == 1)
        #expect(names["unserved"]?.queued == 1 && names["unserved"]?.succeeded == 0)

        wall += 3_000_000  // 3 ms: bucket 12 (2048 up to 4096 µs)
        done("a", "ok")
        done("b", "error")
        let statistics = engine.statistics()
        names = try #require(statistics.names)
        let sleep = try #require(names["sleep"])
        #expect(sleep.succeeded == 1 && sleep.failed == 1 && sleep.timedOut == 0 && sleep.cancelled == 0)
        #expect(sleep.running == 1 && sleep.reserved == 1 && sleep.queued == 0, "d was dispatched once a and b ended")
        let latency = try #require(statistics.latency)
        #expect(latency.total == 2, "\(latency.counts)")
        #expect(latency.counts.count == 13 && latency.counts[12] == 2)
        let median = try #require(latency.quantile(0.5))
        #expect(median >= 0.002048 && median <= 0.004096)

        // The JSON keeps them, and an older reply without them still decodes.
        let decoded = try JSONDecoder().decode(BrokerStatistics.self, from: Data(engine.statisticsJSON().utf8))
        #expect(decoded.names?["sleep"] == sleep && decoded.latency == latency)
        #expect(engine.statisticsJSON().contains(#""succeeded":1,"timed_out":0"#))
    }

    @Test("past 1,000 names, further ones are counted under (other)")
    mutating func boundedNames() {
        var tally = NameTally()
        for n in 0..<1_005 { tally.finished(name: "n\(n)", status: .ok, latencyNanoseconds: 5_000) }
        tally.finished(name: "n3", status: .error, latencyNanoseconds: 5_000)
        #expect(tally.byName.count == NameTally.maxNames + 1)
        #expect(tally.byName[NameTally.otherName]?.succeeded == 5)
        #expect(tally.byName["n3"]?.failed == 1, "a name already counted stays itself")
        #expect(tally.latency[BrokerStatistics.LatencyHistogram.bucket(nanoseconds: 5_000)] == 1_006)
    }
}

@Suite("LatencyHistogram")
struct LatencyHistogramTests {
    @Test("buckets are powers of two of microseconds; quantiles interpolate inside one; differences subtract")
    func histogram() throws {
        typealias H = BrokerStatistics.LatencyHistogram
        #expect(H.bucket(nanoseconds: 999) == 0 && H.bucket(nanoseconds: 1_000) == 1 && H.bucket(nanoseconds: 2_000) == 2)
        #expect(H.bucket(nanoseconds: 1_000_000) == 10 && H.bucket(nanoseconds: .max) == H.buckets - 1)
        var counts = [Int](repeating: 0, count: 12)
        counts[10] = 90  // 512-1024 µs
        counts[11] = 10  // 1024-2048 µs
        let histogram = H(counts: counts + [0, 0])
        #expect(histogram.counts.count == 12, "trailing empty buckets are dropped")
        let p50 = try #require(histogram.quantile(0.5)), p99 = try #require(histogram.quantile(0.99))
        #expect(p50 > 0.000512 && p50 < 0.001024)
        #expect(p99 > 0.001024 && p99 <= 0.002048)
        #expect(H(counts: []).quantile(0.5) == nil)
        let later = H(counts: counts.enumerated().map { $0.offset == 11 ? $0.element + 5 : $0.element })
        #expect(later.subtracting(histogram).counts == [Int](repeating: 0, count: 11) + [5])
    }
}
