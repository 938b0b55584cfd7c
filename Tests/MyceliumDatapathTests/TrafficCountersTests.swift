import MyceliumCore
import MyceliumDatapath
import MyceliumTesting
import Testing

@Suite struct TrafficCountersTests {
    static func address(_ i: Int) -> IPv6Address { IPv6Address(high: 0x0400_0000_0000_0000 | UInt64(i), low: 1) }

    @Test("runs of one address, alternations and new addresses past the limit are counted exactly as plain dictionaries count them")
    func matchesModel() {
        var rng = SeededRandom(seed: 7)
        var counters = TrafficCounters()
        var sources: [IPv6Address: TrafficCounters.Count] = [:]
        var destinations: [IPv6Address: TrafficCounters.Count] = [:]
        var overflow: UInt64 = 0
        func add(_ table: inout [IPv6Address: TrafficCounters.Count], _ key: IPv6Address, _ bytes: Int) {
            guard table[key] != nil || table.count < TrafficCounters.limit else {
                overflow += 1
                return
            }
            table[key, default: .init()].packets += 1
            table[key, default: .init()].bytes += UInt64(bytes)
        }
        func count(_ s: Int, _ d: Int, _ bytes: Int) {
            counters.count(source: Self.address(s), destination: Self.address(d), bytes: bytes)
            add(&sources, Self.address(s), bytes)
            add(&destinations, Self.address(d), bytes)
        }
        // Runs (a bulk flow), alternations (two flows interleaved), a stream of new addresses
        // past the limit, and known addresses at random, interleaved.
        for step in 0..<20_000 {
            let bytes = Int.random(in: 40...1400, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: for _ in 0..<Int.random(in: 1...30, using: &rng) { count(1, 2, bytes) }
            case 1: count(1, 2, bytes); count(2, 1, bytes)
            case 2: count(10_000 + step, 2, bytes); count(1, 2, bytes)
            default: count(Int.random(in: 0..<64, using: &rng), Int.random(in: 0..<64, using: &rng), bytes)
            }
        }
        #expect(sources.count == TrafficCounters.limit, "the run went past the limit")
        #expect(counters.bySource == sources)
        #expect(counters.byDestination == destinations)
        #expect(counters.overflow == overflow)
    }
}
