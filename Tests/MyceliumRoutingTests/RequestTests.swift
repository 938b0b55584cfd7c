@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct RouteRequestTests {
    @Test("a request for our /64 is answered with our own Update")
    func own() {
        var h = Harness()
        h.add(1)
        let out = h.receive(.routeRequest(RouteRequest(generation: 3, prefix: h.router.localSubnet)), from: 1)
        #expect(Harness.updates(out).map { $0.0.subnet } == [h.router.localSubnet])
    }

    @Test("a request for a selected route is answered, except to its next hop")
    func selected() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0), from: 1)
        let toTwo = h.receive(.routeRequest(RouteRequest(prefix: node.publicKey.subnet)), from: 2)
        #expect(Harness.updates(toTwo).map(\.1) == [NeighbourId(2)])
        #expect(Harness.updates(toTwo).first?.0.metric == Metric(1010))
        let toOne = h.receive(.routeRequest(RouteRequest(prefix: node.publicKey.subnet)), from: 1)
        #expect(toOne.isEmpty)
    }

    @Test("an unknown subnet: forwarded with generation + 1 to everyone but the requester, once per 15 s; generation 15 stops")
    func forwarding() {
        var h = Harness()
        h.add(1); h.add(2); h.add(3)
        let subnet = h.makeNode().publicKey.subnet
        let out = h.receive(.routeRequest(RouteRequest(generation: 4, prefix: subnet)), from: 1)
        #expect(Set(Harness.routeRequests(out).map(\.1)) == [NeighbourId(2), NeighbourId(3)])
        #expect(Harness.routeRequests(out).allSatisfy { $0.0.generation == 5 })
        // Already queried: neither answered nor forwarded again.
        #expect(h.receive(.routeRequest(RouteRequest(generation: 1, prefix: subnet)), from: 2).isEmpty)
        // A generation-15 request is dropped.
        let other = h.makeNode().publicKey.subnet
        #expect(h.receive(.routeRequest(RouteRequest(generation: 15, prefix: other)), from: 1).isEmpty)
        // After the query expired (15 s) it is forwarded again.
        h.advance(to: 15_001)
        #expect(!Harness.routeRequests(h.receive(.routeRequest(RouteRequest(generation: 0, prefix: subnet)), from: 1)).isEmpty)
    }

    @Test("a wildcard request gets every selected route not via the requester, and our own")
    func wildcard() {
        var h = Harness()
        h.add(1); h.add(2)
        let a = h.makeNode(), b = h.makeNode()
        h.receive(Harness.update(a, metric: 0), from: 1)
        h.receive(Harness.update(b, metric: 0), from: 2)
        let out = h.receive(.routeRequest(RouteRequest(prefix: nil)), from: 1)
        #expect(Set(Harness.updates(out).map { $0.0.subnet }) == [b.publicKey.subnet, h.router.localSubnet])
    }

    @Test("the datapath needs a route: one RouteRequest to all, no repeat while queried, failure after 15 s")
    func routeNeeded() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        let out = h.handle(.routeNeeded(node.publicKey.overlayAddress))
        #expect(Harness.routeRequests(out).map { $0.0 } == [RouteRequest(generation: 0, prefix: node.publicKey.subnet),
                                                           RouteRequest(generation: 0, prefix: node.publicKey.subnet)])
        #expect(h.handle(.routeNeeded(node.publicKey.overlayAddress)).isEmpty)
        #expect(h.router.queriedSubnets(now: h.now).map(\.subnet) == [node.publicKey.subnet])
        #expect(h.advance(to: 15_000).contains(.queryFailed(node.publicKey.subnet)))
        // A query answered in time does not fail.
        let other = h.makeNode()
        h.handle(.routeNeeded(other.publicKey.overlayAddress))
        h.receive(Harness.update(other, metric: 0), from: 2)
        #expect(!h.advance(to: 31_000).contains(.queryFailed(other.publicKey.subnet)))
        // Our own /64 and non-overlay addresses never cause queries.
        #expect(h.handle(.routeNeeded(h.router.routerId.publicKey.overlayAddress)).isEmpty)
        #expect(h.handle(.routeNeeded(IPv6Address("2001:db8::1")!)).isEmpty)
    }

    @Test("a new neighbour is told about our outstanding queries")
    func queriesToNewNeighbour() {
        var h = Harness()
        h.add(1)
        let node = h.makeNode()
        h.handle(.routeNeeded(node.publicKey.overlayAddress))
        let out = h.add(2)
        #expect(Harness.routeRequests(out).map(\.0) == [RouteRequest(prefix: node.publicKey.subnet), RouteRequest(prefix: nil)])
    }
}

@Suite struct SeqNoRequestTests {
    @Test("a request for our route with a newer seqno bumps ours (at most once per 4 s) and tells everyone")
    func bump() {
        var h = Harness()
        h.add(1); h.add(2)
        let me = h.router.routerId, mine = h.router.localSubnet
        let out = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), routerId: me, prefix: mine)), from: 1)
        #expect(h.router.seqno == SeqNo(1))
        #expect(Set(Harness.updates(out).map(\.1)) == [NeighbourId(1), NeighbourId(2)])
        #expect(Harness.updates(out).allSatisfy { $0.0.seqno == SeqNo(1) })
        h.now = Instant(milliseconds: 3_999)
        h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(2), routerId: me, prefix: mine)), from: 2)
        #expect(h.router.seqno == SeqNo(1))
        h.now = Instant(milliseconds: 4_000)
        h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(3), routerId: me, prefix: mine)), from: 2)
        #expect(h.router.seqno == SeqNo(2))
    }

    @Test("a request naming an old router id of ours is answered with our current Update")
    func oldRouterId() {
        var h = Harness()
        h.add(1)
        let stale = RouterId(publicKey: h.router.routerId.publicKey, random: 999)
        let out = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(9), routerId: stale, prefix: h.router.localSubnet)), from: 1)
        #expect(Harness.updates(out).map { $0.0.routerId } == [h.router.routerId])
        #expect(h.router.seqno == SeqNo(0))
    }

    @Test("answered from a selected route that satisfies it; otherwise forwarded to one announcer with hop count − 1")
    func answerOrForward() {
        var h = Harness()
        h.add(1); h.add(2); h.add(3)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0, seqno: 5), from: 1)
        let answered = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(5), routerId: node, prefix: node.publicKey.subnet)), from: 2)
        #expect(Harness.updates(answered).map(\.1) == [NeighbourId(2)])

        let forwarded = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(6), hopCount: 10, routerId: node, prefix: node.publicKey.subnet)), from: 2)
        let fw = Harness.seqnoRequests(forwarded)
        #expect(fw.count == 1)
        #expect(fw.first?.1 == NeighbourId(1) && fw.first?.0.hopCount == 9)

        // The same request again within 60 s is a duplicate: dropped, but 3 will get the answer too.
        #expect(Harness.seqnoRequests(h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(6), routerId: node, prefix: node.publicKey.subnet)), from: 3)).isEmpty)
        // The answer (seqno 6, same metric: no triggered update) goes back to the requesters.
        let answer = h.receive(Harness.update(node, metric: 0, seqno: 6), from: 1)
        #expect(Set(Harness.updates(answer).map(\.1)) == [NeighbourId(2), NeighbourId(3)])

        // Hop count 1: not forwarded.
        #expect(Harness.seqnoRequests(h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(60), hopCount: 1, routerId: node, prefix: node.publicKey.subnet)), from: 2)).isEmpty)
    }

    /// Beyond Rust: the answer to a forwarded request travels along selected routes only, so a
    /// node whose old-seqno route is still feasible for itself must switch to the route that
    /// carries the newer seqno, or everyone behind it stays without a route (found by the soak
    /// suite after link cuts).
    @Test("a waiting requester is answered from a feasible route that is not selected: arriving later, or already there")
    func answerFromUnselectedRoute() {
        // Later: 2 asks for seqno 1, we forward it; the seqno-1 Update arrives on the worse route via 3.
        var h = Harness()
        h.add(1); h.add(2); h.add(3)
        let node = h.makeNode(), subnet = node.publicKey.subnet
        h.receive(Harness.update(node, metric: 100, seqno: 0), from: 1)
        #expect(h.router.nextHop(for: subnet) == NeighbourId(1))
        let forwarded = h.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), hopCount: 10, routerId: node, prefix: subnet)), from: 2)
        #expect(Harness.seqnoRequests(forwarded).map(\.1) == [NeighbourId(1)])
        let answer = h.receive(Harness.update(node, metric: 500, seqno: 1), from: 3)
        #expect(h.router.nextHop(for: subnet) == NeighbourId(3), "the route with the awaited seqno is selected despite its metric")
        #expect(Harness.updates(answer).contains { $0.1 == NeighbourId(2) && $0.0.seqno == SeqNo(1) }, "the requester gets seqno 1")

        // Already there: the seqno-1 route via 3 is known but not selected when 2 asks.
        var g = Harness()
        g.add(1); g.add(2); g.add(3)
        g.receive(Harness.update(node, metric: 100, seqno: 0), from: 1)
        g.receive(Harness.update(node, metric: 500, seqno: 1), from: 3)
        #expect(g.router.nextHop(for: subnet) == NeighbourId(1), "hysteresis keeps the better route while nobody waits")
        let out = g.receive(.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), hopCount: 10, routerId: node, prefix: subnet)), from: 2)
        #expect(Harness.seqnoRequests(out).isEmpty, "answered here, not forwarded")
        #expect(g.router.nextHop(for: subnet) == NeighbourId(3))
        #expect(Harness.updates(out).contains { $0.1 == NeighbourId(2) && $0.0.seqno == SeqNo(1) })

        // Nobody waits: a newer seqno on a worse route does not displace the selection.
        var f = Harness()
        f.add(1); f.add(3)
        f.receive(Harness.update(node, metric: 100, seqno: 0), from: 1)
        f.receive(Harness.update(node, metric: 500, seqno: 1), from: 3)
        #expect(f.router.nextHop(for: subnet) == NeighbourId(1))
    }

    @Test("a lost route is asked for again with backoff: SeqNoRequests to its announcers, then RouteRequests, until one is selected")
    func lostRouteRetries() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode(), subnet = node.publicKey.subnet
        h.receive(Harness.update(node, metric: 100, seqno: 0), from: 1)
        #expect(h.router.nextHop(for: subnet) == NeighbourId(1))
        // 1 retracts, with its own router id as Rust does: the route is lost, and 1 is asked at once.
        let retraction = Update(interval: ProtocolConstants.updateIntervalCs, seqno: SeqNo(0), metric: .infinite, subnet: subnet,
                                routerId: h.makeNode())
        let lost = h.receive(.update(retraction), from: 1)
        #expect(Harness.seqnoRequests(lost).map(\.1) == [NeighbourId(1)])
        // Nobody answers. 5 s later: asked again (the retracted entry is held 6 s), for the
        // router id of the route we lost, not the retraction's.
        let first = h.advance(to: 5_000)
        #expect(Harness.seqnoRequests(first).map(\.1) == [NeighbourId(1)])
        #expect(Harness.seqnoRequests(first).allSatisfy { $0.0.routerId == node })
        #expect(h.router.stats.lostRouteRetries == 1)
        // 10 s after that the entry is gone: a RouteRequest to every neighbour.
        let second = h.advance(to: 15_000)
        #expect(Set(Harness.routeRequests(second).map(\.1)) == [NeighbourId(1), NeighbourId(2)])
        // An answer: selected, and the retries stop.
        h.receive(Harness.update(node, metric: 100, seqno: 1), from: 2)
        #expect(h.router.nextHop(for: subnet) == NeighbourId(2))
        let later = h.advance(to: 400_000, alive: true)
        #expect(Harness.seqnoRequests(later).isEmpty && Harness.routeRequests(later).isEmpty)
        #expect(h.router.stats.lostRouteRetries == 2)
    }

    @Test("a duplicate request is dropped within 4 s of our forward, and forwarded again after (a retry through a crashed hop)")
    func duplicateRetry() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode(), subnet = node.publicKey.subnet
        h.receive(Harness.update(node, metric: 100, seqno: 0), from: 1)
        let request = ControlTLV.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), hopCount: 10, routerId: node, prefix: subnet))
        #expect(Harness.seqnoRequests(h.receive(request, from: 2)).map(\.1) == [NeighbourId(1)])
        h.now = Instant(milliseconds: 3_999)
        #expect(Harness.seqnoRequests(h.receive(request, from: 2)).isEmpty)
        h.now = Instant(milliseconds: 4_000)
        #expect(Harness.seqnoRequests(h.receive(request, from: 2)).map(\.1) == [NeighbourId(1)])
    }

    @Test("a peer that announced a thousand routes and left: the requests at the loss and the retries go out within one budget, the rest wait")
    func lostRouteRetryBudget() {
        var h = Harness()
        h.add(1); h.add(2)
        for _ in 0..<1_000 { h.receive(Harness.update(h.makeNode(), metric: 100, seqno: 0), from: 1) }
        let limitsBefore = h.router.stats.limitsHit
        // At the loss: a RouteRequest to the neighbour left for the first `retryBurst` subnets
        // only, not one for each of the thousand (each would be forwarded network-wide).
        let atLoss = Harness.routeRequests(h.handle(.neighbourRemoved(NeighbourId(1))))
        #expect(atLoss.count == RouterLimits.retryBurst && atLoss.allSatisfy { $0.1 == NeighbourId(2) })
        #expect(Set(atLoss.compactMap(\.0.prefix)).count == RouterLimits.retryBurst)
        #expect(h.router.stats.limitsHit - limitsBefore == 1_000 - RouterLimits.retryBurst)
        // 5 s later the retries start, with what the budget refilled in those 5 s.
        let round = h.advance(to: 5_000, alive: true)
        let refilled = 5 * RouterLimits.retriesPerSecond
        #expect(h.router.stats.lostRouteRetries == refilled)
        #expect(Harness.routeRequests(round).count <= refilled)
        // Every lost route is asked for in the end: the budget delays, it never forgets (a retry
        // waiting for a token keeps its attempts).
        var asked = Set(atLoss.compactMap(\.0.prefix))
        asked.formUnion(Harness.routeRequests(round).compactMap(\.0.prefix))
        asked.formUnion(Harness.routeRequests(h.advance(to: 400_000, alive: true)).compactMap(\.0.prefix))
        #expect(asked.count == 1_000)
    }
}
