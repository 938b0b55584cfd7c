@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct NeighbourTests {
    @Test("a Hello is answered at once with an IHU carrying our link cost (AE 0, interval 6000)")
    func helloGetsIHU() throws {
        var h = Harness()
        h.add(1)
        let out = h.receive(.hello(Hello(seqno: SeqNo(3), interval: 2000)), from: 1)
        #expect(out == [.send(.ihu(IHU(rxCost: 1010, interval: 6000, address: nil)), to: NeighbourId(1))])
    }

    @Test("Hellos go to every neighbour every 20 s with a per-neighbour seqno")
    func helloTimer() {
        var h = Harness()
        h.add(1); h.add(2)
        let first = Harness.sent(h.advance(to: 20_000)).filter { if case .hello = $0.0 { return true }; return false }
        #expect(first.count == 2)
        #expect(first.allSatisfy { if case let .hello(hl) = $0.0 { return hl.seqno == SeqNo(0) && hl.flags == 0x8000 && hl.interval == 2000 }; return false })
        let second = Harness.sent(h.advance(to: 40_000)).filter { if case .hello = $0.0 { return true }; return false }
        #expect(second.count == 2)
        #expect(second.allSatisfy { if case let .hello(hl) = $0.0 { return hl.seqno == SeqNo(1) }; return false })
    }

    @Test("link cost: EWMA of the Hello→IHU delay starting at 1000, plus the static cost; repeat IHUs are not sampled")
    func linkCost() {
        var h = Harness()
        h.add(1, cost: LinkCost.tcpIPv4)
        #expect(h.router.linkCost(of: NeighbourId(1)) == Metric(1015))
        h.advance(to: 20_000)
        h.now = Instant(milliseconds: 20_100)
        h.receive(.ihu(IHU(rxCost: 0, interval: 6000)), from: 1)
        #expect(h.router.linkCost(of: NeighbourId(1)) == Metric((9 * 1000 + 100) / 10 + 15))
        h.now = Instant(milliseconds: 25_000)
        h.receive(.ihu(IHU(rxCost: 0, interval: 6000)), from: 1)
        #expect(h.router.linkCost(of: NeighbourId(1)) == Metric(925))
    }

    @Test("a neighbour without IHU for more than 43 s is disconnected at the next 10 s check")
    func deadNeighbour() {
        var h = Harness()
        h.add(1); h.add(2)
        // Neighbour 2 answers every Hello, neighbour 1 never does.
        for t in stride(from: Int64(20_000), through: 60_000, by: 20_000) {
            let out = h.advance(to: t)
            #expect(!out.contains(.disconnect(NeighbourId(2))))
            h.receive(.ihu(IHU(rxCost: 0, interval: 6000)), from: 2)
            if t < 40_000 { #expect(!out.contains(.disconnect(NeighbourId(1)))) }
        }
        #expect(h.router.neighbourIds == [NeighbourId(2)])
        #expect(h.router.stats.peersDied == 1)
    }

    @Test("a new neighbour gets our own /64 at once (metric 0, interval 30000, our router id and seqno), then a wildcard request")
    func ownRouteOnConnect() {
        var h = Harness()
        let out = h.add(7)
        #expect(out == [.send(.update(Update(interval: 30_000, seqno: SeqNo(0), metric: .zero,
                                            subnet: h.router.localSubnet, routerId: h.router.routerId)), to: NeighbourId(7)),
                        .send(.routeRequest(RouteRequest(generation: 0, prefix: nil)), to: NeighbourId(7))])
    }

    @Test("our own /64 is re-announced to everyone every 300 s")
    func ownRoutePeriodic() {
        var h = Harness()
        h.add(1); h.add(2)
        let out = h.advance(to: 300_000, alive: true)
        let own = Harness.updates(out).filter { $0.0.subnet == h.router.localSubnet }
        #expect(Set(own.map(\.1)) == [NeighbourId(1), NeighbourId(2)])
        #expect(Harness.updates(h.advance(to: 599_000, alive: true)).filter { $0.0.subnet == h.router.localSubnet }.isEmpty)
        #expect(Harness.updates(h.advance(to: 600_000, alive: true)).filter { $0.0.subnet == h.router.localSubnet }.count == 2)
    }
}
