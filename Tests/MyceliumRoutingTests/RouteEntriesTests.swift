@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

/// `RouteEntries` (two entries inline, more in an array) against an `Array` doing the same
/// appends, in-place changes and order-keeping removals: the router reads entries in order
/// (the first announcer, the targets of a SeqNoRequest), so the order must be an array's.
@Suite struct RouteEntriesTests {
    static func entry(_ n: UInt64, metric: UInt16) -> RouteEntry {
        RouteEntry(neighbour: NeighbourId(n), routerId: RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 9, count: 32))!, random: n),
                   seqno: SeqNo(UInt16(truncatingIfNeeded: n)), metric: Metric(metric), expires: Instant(milliseconds: Int64(n)))
    }

    static func summary(_ c: some Collection<RouteEntry>) -> [[UInt64]] {
        c.map { [$0.neighbour.rawValue, $0.routerIdTail, UInt64($0.metric.rawValue), UInt64($0.seqno.rawValue), UInt64($0.expires.milliseconds)] }
    }

    @Test("random appends, changes and removals agree with an Array", arguments: [1, 2, 3] as [UInt64])
    func model(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var entries = RouteEntries()
        var model: [RouteEntry] = []
        #expect(entries.isEmpty)
        for step in 0..<3_000 {
            // Sizes wander around the inline boundary (0 to about 6).
            let op = Int.random(in: 0..<4, using: &rng)
            if model.isEmpty || (op <= 1 && model.count < 6) {
                let e = Self.entry(UInt64(step), metric: UInt16(step % 500))
                entries.append(e)
                model.append(e)
            } else if op == 3 {
                let i = Int.random(in: 0..<model.count, using: &rng)
                entries[i].metric = Metric(UInt16(step % 700))
                model[i].metric = Metric(UInt16(step % 700))
            } else {
                let i = op == 2 ? Int.random(in: 0..<model.count, using: &rng) : 0
                entries.remove(at: i)
                model.remove(at: i)
            }
            #expect(entries.count == model.count)
            #expect(Self.summary(entries) == Self.summary(model))
        }
        #expect(Self.summary(RouteEntries(model)) == Self.summary(model))
    }

    @Test("a route entry is 32 bytes; order is kept across the inline boundary")
    func layout() {
        #expect(MemoryLayout<RouteEntry>.stride == 32)
        var entries = RouteEntries()
        entries.append(Self.entry(1, metric: 1))
        entries.append(Self.entry(2, metric: 2))
        #expect(entries.firstIndex { $0.neighbour == NeighbourId(2) } == 1)
        entries.append(Self.entry(3, metric: 3))
        entries.remove(at: 0)
        #expect(entries.map(\.neighbour) == [NeighbourId(2), NeighbourId(3)])
    }
}
