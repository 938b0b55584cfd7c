@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

/// A neighbour that speaks the protocol and lies or floods: the router must neither trap nor
/// grow without bound, and must keep answering honest neighbours.
@Suite struct HostilePeerTests {
    static func refusals(_ actions: [RouterAction]) -> [Refusal] {
        actions.compactMap { if case let .refused(_, why) = $0 { return why }; return nil }
    }

    @Test("a RouteRequest with generation 255 (or 254, 15) is dropped, never a trap")
    func generationOverflow() {
        var h = Harness()
        h.add(1); h.add(2)
        for generation: UInt8 in [255, 254, 16, 15] {
            let subnet = h.makeNode().publicKey.subnet
            let out = h.receive(.routeRequest(RouteRequest(generation: generation, prefix: subnet)), from: 1)
            #expect(Harness.routeRequests(out).isEmpty, "generation \(generation) forwarded")
        }
        let subnet = h.makeNode().publicKey.subnet
        #expect(Harness.routeRequests(h.receive(.routeRequest(RouteRequest(generation: 14, prefix: subnet)), from: 1)).map(\.0.generation) == [15])
    }

    @Test("wildcard RouteRequests: two answered with the table, then one a minute")
    func wildcardRate() {
        var h = Harness()
        h.add(1); h.add(2)
        for _ in 0..<5 { h.receive(Harness.update(h.makeNode(), metric: 0), from: 2) }
        let wildcard = ControlTLV.routeRequest(RouteRequest(generation: 0, prefix: nil))
        #expect(Harness.updates(h.receive(wildcard, from: 1)).count == 6)  // 5 routes + our own
        #expect(Harness.updates(h.receive(wildcard, from: 1)).count == 6)
        let third = h.receive(wildcard, from: 1)
        #expect(Harness.updates(third).isEmpty && Self.refusals(third) == [.rateLimited])
        #expect(h.router.stats.tlvsRateLimited == 1)
        h.now = h.now + 60_000
        #expect(Harness.updates(h.receive(wildcard, from: 1)).count == 6)
    }

    @Test("a Hello flood: 16 answered at once, then one per second; other neighbours unaffected")
    func helloFlood() {
        var h = Harness()
        h.add(1); h.add(2)
        let hello = ControlTLV.hello(Hello(seqno: SeqNo(1), interval: 2000))
        var answered = 0
        for _ in 0..<1000 { answered += Harness.sent(h.receive(hello, from: 1)).count }
        #expect(answered == 16)
        #expect(Harness.sent(h.receive(hello, from: 2)).count == 1)
        h.now = h.now + 1000
        #expect(Harness.sent(h.receive(hello, from: 1)).count == 1)
    }

    @Test("only /64 Updates are taken: a /128 under someone's /64 with their router id would beat their own route")
    func longerPrefix() {
        var h = Harness()
        h.add(1)
        let victim = h.makeNode()
        let hijack = Subnet(victim.publicKey.overlayAddress, prefixLength: 128)!
        let out = h.receive(Harness.update(victim, metric: 0, subnet: hijack), from: 1)
        #expect(Self.refusals(out) == [.badUpdate] && h.router.stats.updatesDenied == 1)
        #expect(h.router.forwardingTable().lookup(victim.publicKey.overlayAddress) == .none)
    }

    @Test("a forged seqno jump for our own /64 is answered with a higher seqno of ours")
    func ownSeqnoJump() {
        var h = Harness()
        h.add(1)
        let own = h.router.routerId
        let out = h.receive(Harness.update(own, metric: 0, seqno: 30_000), from: 1)
        #expect(h.router.seqno == SeqNo(30_001))
        #expect(Harness.updates(out).map(\.0.seqno) == [SeqNo(30_001)])
        // Another router id for our /64 (same key, new suffix) is not ours to answer.
        let other = RouterId(publicKey: own.publicKey, random: 99)
        h.receive(Harness.update(other, metric: 0, seqno: 40_000), from: 1)
        #expect(h.router.seqno == SeqNo(30_001))
    }

    @Test("routes per neighbour are capped; the neighbour's excess is refused, others still learn")
    func routeCap() {
        var h = Harness()
        h.add(1); h.add(2)
        var refused = 0
        for i in 0..<(RouterLimits.routesPerNeighbour + 10) {
            if i % 2000 == 0 { h.now = h.now + 1000 }  // stay inside the Update bucket's rate
            refused += Self.refusals(h.receive(Harness.update(h.makeNode(), metric: 0), from: 1)).count
        }
        #expect(refused == 10)
        #expect(h.router.neighbours[NeighbourId(1)]!.routeCount == RouterLimits.routesPerNeighbour)
        #expect(Self.refusals(h.receive(Harness.update(h.makeNode(), metric: 0), from: 2)).isEmpty)
    }

    @Test("router ids per subnet are capped: rotating the id suffix cannot grow the source table")
    func routerIdRotation() {
        var h = Harness()
        h.add(1); h.add(2)
        let key = h.makeNode().publicKey
        var refused = 0
        for i in 0..<100 {
            let id = RouterId(publicKey: key, random: UInt64(i + 1))
            refused += Self.refusals(h.receive(Harness.update(id, metric: 0, seqno: UInt16(i)), from: 1)).count
        }
        #expect(h.router.sources.routerIdCount(subnet: key.subnet) <= RouterLimits.routerIdsPerSubnet)
        #expect(refused > 0)
    }

    @Test("RouteRequests for random subnets: rate-limited per neighbour, pending queries capped")
    func requestFlood() {
        var h = Harness()
        h.add(1); h.add(2)
        var forwarded = 0
        for _ in 0..<5000 {
            forwarded += Harness.routeRequests(h.receive(.routeRequest(RouteRequest(generation: 0, prefix: h.makeNode().publicKey.subnet)), from: 1)).count
        }
        #expect(forwarded == 256)  // the burst; then 32 a second
        #expect(h.router.queried.count <= RouterLimits.pendingQueries)
        #expect(h.router.stats.tlvsRateLimited == 5000 - 256)
    }

    @Test("a SeqNoRequest for a prefix outside 400::/7 is dropped")
    func seqnoOutsideOverlay() {
        var h = Harness()
        h.add(1); h.add(2)
        let outside = Subnet("2001:db8::/64")!
        let out = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), hopCount: 64, routerId: h.makeNode(), prefix: outside)), from: 1)
        #expect(out.isEmpty && h.router.stats.seqnoDropped == 1)
    }

    @Test("packets to random subnets start at most the query budget of RouteRequests; the rest fail at once")
    func datapathQueryBudget() {
        var h = Harness()
        h.add(1); h.add(2)
        var requests = 0, failed = 0
        for i in 0..<2000 {
            let out = h.handle(.routeNeeded(IPv6Address(high: 0x0500_0000_0000_0000 | UInt64(i) << 16, low: 1)))
            requests += Harness.routeRequests(out).count
            failed += out.filter { if case .queryFailed = $0 { return true }; return false }.count
        }
        #expect(requests == RouterLimits.queryBurst * 2)  // one to each neighbour
        #expect(failed == 2000 - RouterLimits.queryBurst)
        h.now = h.now + 1000
        #expect(Harness.routeRequests(h.handle(.routeNeeded(IPv6Address("5ff::1")!))).count == 2)
    }
}
