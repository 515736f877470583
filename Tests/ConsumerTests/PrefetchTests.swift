@testable import ConveyorConsumer
import Testing

@Suite("Prefetch")
struct PrefetchTests {
    @Test("parses auto and task counts 0-100000, refuses anything else")
    func parsing() {
        #expect(Prefetch("auto") == .automatic())
        #expect(Prefetch("0") == .fixed(0))
        #expect(Prefetch("16") == .fixed(16))
        #expect(Prefetch("100000") == .fixed(100_000))
        #expect(Prefetch("-1") == nil)
        #expect(Prefetch("x") == nil)
        #expect(Prefetch("100001") == nil)
        #expect(Prefetch("") == nil)
        #expect(Prefetch("AUTO") == nil)
        #expect(Prefetch(" 16") == nil)
        #expect(Prefetch("1.5") == nil)
        #expect(Prefetch("99999999999999999999") == nil)
    }

    @Test("description is the text that parses back to the same value")
    func descriptionRoundTrips() {
        #expect(Prefetch.fixed(16).description == "16")
        #expect(Prefetch.automatic().description == "auto")
        for prefetch in [Prefetch.fixed(0), .fixed(1), .fixed(100_000), .automatic()] {
            #expect(Prefetch(prefetch.description) == prefetch)
        }
    }

    @Test("a consumer's default is automatic, at most 1,000 tasks, for a 5 ms buffer")
    func defaultIsAutomatic() {
        #expect(ConsumerConfiguration().prefetch == .automatic())
        #expect(Prefetch.automatic() == .automatic(maximum: 1_000, buffer: .milliseconds(5)))
    }

    @Test("a fixed prefetch is its count, whatever the pace")
    func fixedCount() {
        for average in [nil, 0, 1, 1_000_000, UInt64.max] as [UInt64?] {
            #expect(Prefetch.fixed(0).count(threads: 4, averageNanoseconds: average) == 0)
            #expect(Prefetch.fixed(7).count(threads: 4, averageNanoseconds: average) == 7)
            #expect(Prefetch.fixed(100_000).count(threads: 1, averageNanoseconds: average) == 100_000)
        }
    }

    @Test("automatic with no measurement yet is 0")
    func automaticUnmeasured() {
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: nil) == 0)
        #expect(Prefetch.automatic(maximum: 50, buffer: .seconds(1)).count(threads: 64, averageNanoseconds: nil) == 0)
    }

    @Test("automatic for tiny handlers is capped at the maximum")
    func automaticCapped() {
        #expect(Prefetch.automatic().count(threads: 2, averageNanoseconds: 0) == 1_000)
        #expect(Prefetch.automatic().count(threads: 2, averageNanoseconds: 1) == 1_000)
        #expect(Prefetch.automatic().count(threads: 1, averageNanoseconds: 100) == 1_000)
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: 1_000) == 1_000)
        #expect(Prefetch.automatic(maximum: 50).count(threads: 4, averageNanoseconds: 1_000) == 50)
        #expect(Prefetch.automatic(maximum: 0).count(threads: 4, averageNanoseconds: 1) == 0)
    }

    @Test("automatic is 0 once a handler takes threads × buffer or longer")
    func automaticSlowHandlers() {
        let fiveMs: UInt64 = 5_000_000
        #expect(Prefetch.automatic().count(threads: 1, averageNanoseconds: fiveMs + 1) == 0)
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: 4 * fiveMs + 1) == 0)
        // Slower than the buffer but faster than threads × buffer: the threads still finish some within it.
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: 6_000_000) == 3)
        #expect(Prefetch.automatic().count(threads: 50, averageNanoseconds: 10_000_000) == 25)
        #expect(Prefetch.automatic().count(threads: 2, averageNanoseconds: 50_000_000) == 0)
        #expect(Prefetch.automatic().count(threads: 64, averageNanoseconds: UInt64.max) == 0)
        // Exactly the buffer: one task per thread.
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: fiveMs) == 4)
    }

    @Test("automatic in between is threads × buffer / average, rounded down")
    func automaticInBetween() {
        #expect(Prefetch.automatic().count(threads: 1, averageNanoseconds: 1_000_000) == 5)
        #expect(Prefetch.automatic().count(threads: 4, averageNanoseconds: 1_000_000) == 20)
        // 3 × 5 ms / 2 ms = 7.5, rounded down once (not 3 × floor(5 / 2) = 6).
        #expect(Prefetch.automatic().count(threads: 3, averageNanoseconds: 2_000_000) == 7)
        #expect(Prefetch.automatic().count(threads: 2, averageNanoseconds: 10_000) == 1_000)    // 500 per thread, 1,000
        #expect(Prefetch.automatic().count(threads: 2, averageNanoseconds: 20_000) == 500)
        #expect(Prefetch.automatic().count(threads: 8, averageNanoseconds: 100_000) == 400)
        #expect(Prefetch.automatic(maximum: 1_000, buffer: .milliseconds(10)).count(threads: 2, averageNanoseconds: 1_000_000) == 20)
        #expect(Prefetch.automatic(maximum: 10_000, buffer: .seconds(1)).count(threads: 4, averageNanoseconds: 1_000_000) == 4_000)
    }
}
