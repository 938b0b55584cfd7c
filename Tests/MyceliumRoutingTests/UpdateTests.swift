@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct UpdateTests {
    @Test("route hold time = 3.5 × interval; retractions 6 s (vector)")
    func holdTime() throws {
        let cases = Vectors.vector("router.route_hold_time")["cases"].array
        #expect(cases.count == 4)
        #expect(ProtocolConstants.routeHoldMs(intervalCs: 6000, metric: Metric(1)) == Int64(cases[0]["hold_ms"].int!))
        #expect(ProtocolConstants.routeHoldMs(intervalCs: 100, metric: Metric(1)) == Int64(cases[1]["hold_ms"].int!))
        #expect(ProtocolConstants.routeHoldMs(intervalCs: 47, metric: Metric(1)) == Int64(cases[2]["hold_ms"].int!))
        #expect(ProtocolConstants.routeHoldMs(intervalCs: 6000, metric: .infinite) == Int64(cases[3]["hold_ms"].int!))
        #expect(ProtocolConstants.routeHoldMs(intervalCs: 30_000, metric: .zero) == 1_050_000)
    }

    @Test("feasibility condition (vector)")
    func feasibility() throws {
        let v = Vectors.vector("source_table.feasibility")
        let subnet = Subnet("400::/64")!
        let id = RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 1, count: 32))!, random: 0)
        var table = SourceTable(ourKey: PublicKey(bytes: [UInt8](repeating: 2, count: 32))!)
        table.recordSent(subnet: subnet, routerId: id, seqno: SeqNo(UInt16(v["fd"]["seqno"].int!)),
                         metric: Metric(UInt16(v["fd"]["metric"].int!)), now: .zero)
        for c in v["cases"].array {
            let u = c["update"].isNull ? c["route_entry"] : c["update"]
            let feasible = table.isFeasible(subnet: subnet, routerId: id, seqno: SeqNo(UInt16(u["seqno"].int!)),
                                            metric: Metric(UInt16(u["metric"].int!)))
            #expect(feasible == c["feasible"].bool, "\(c)")
        }
        // Unknown (subnet, router id): always feasible. Garbage collected after 30 minutes.
        #expect(table.isFeasible(subnet: Subnet("402::/64")!, routerId: id, seqno: SeqNo(0), metric: Metric(500)))
        #expect(table.collectGarbage(now: Instant(milliseconds: 30 * 60_000 - 1)) == 0)
        #expect(table.collectGarbage(now: Instant(milliseconds: 30 * 60_000)) == 1)
    }

    @Test("filters: outside 400::/7, not a /64, or not owned by the router id → denied; own /64 ignored")
    func filters() {
        var h = Harness()
        h.add(1)
        let node = h.makeNode(), other = h.makeNode()
        h.receive(Harness.update(node, metric: 0, subnet: Subnet("2001:db8::/64")!), from: 1)
        h.receive(Harness.update(node, metric: 0, subnet: Subnet(node.publicKey.overlayAddress, prefixLength: 48)!), from: 1)
        h.receive(Harness.update(node, metric: 0, subnet: other.publicKey.subnet), from: 1)
        #expect(h.router.stats.updatesDenied == 3)
        h.receive(Harness.update(node, metric: 0, subnet: h.router.localSubnet), from: 1)
        #expect(h.router.routes.isEmpty)
        // A longer prefix inside the owner's /64 is denied too (Rust takes it; no node announces
        // one, and it would win the longest-prefix match over the owner's /64).
        h.receive(Harness.update(node, metric: 0, subnet: Subnet(node.publicKey.overlayAddress, prefixLength: 96)!), from: 1)
        #expect(h.router.routes.isEmpty && h.router.stats.updatesDenied == 5)
        h.receive(Harness.update(node, metric: 0), from: 1)
        #expect(h.router.routes.count == 1)
    }

    @Test("acquiring a route: triggered update to all but the next hop, with metric + link cost")
    func acquire() {
        var h = Harness()
        h.add(1); h.add(2); h.add(3)
        let node = h.makeNode()
        let out = h.receive(Harness.update(node, metric: 0, seqno: 5), from: 1)
        #expect(out.contains(.routeAcquired(node.publicKey.subnet)))
        #expect(out.contains(.forwardingTableChanged))
        let ups = Harness.updates(out)
        #expect(Set(ups.map(\.1)) == [NeighbourId(2), NeighbourId(3)])
        #expect(ups.allSatisfy { $0.0.metric == Metric(1010) && $0.0.seqno == SeqNo(5) && $0.0.routerId == node })
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(1))
        var table = h.router.forwardingTable()
        guard case let .route(e) = table.lookup(node.publicKey.overlayAddress) else { Issue.record("no route"); return }
        #expect(e.nextHop == NeighbourId(1) && e.owner == node.publicKey && e.metric == Metric(1010))
        table = h.router.forwardingTable()
        #expect(table.lookup(h.router.routerId.publicKey.overlayAddress) == .local)
    }

    @Test("selection: hysteresis of 10, and the owner itself (metric 0) always wins")
    func hysteresis() {
        var h = Harness()
        h.add(1); h.add(2); h.add(3, cost: 95)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 100), from: 1)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(1))
        // 5 better: not enough to switch.
        h.receive(Harness.update(node, metric: 95), from: 2)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(1))
        // 11 better than current: switch.
        h.receive(Harness.update(node, metric: 89), from: 2)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(2))
        // Metric 0 (the owner is our neighbour) wins though it is only 4 better (1095 vs 1099).
        h.receive(Harness.update(node, metric: 0), from: 3)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(3))
    }

    @Test("the owner of a subnet stays its owner's key after a retraction that carries another router id")
    func ownerAfterRetraction() {
        var h = Harness()
        h.add(1)
        let node = h.makeNode()
        let address = node.publicKey.overlayAddress
        h.receive(Harness.update(node, metric: 0), from: 1)
        #expect(h.router.owner(of: address) == node.publicKey)
        // The retraction carries its sender's router id (spec §5.9), not the owner's.
        let sender = h.makeNode()
        h.receive(Harness.update(sender, metric: 0xFFFF, subnet: node.publicKey.subnet), from: 1)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == nil)
        #expect(h.router.owner(of: address) == node.publicKey)
        // The entry keeps the owner's router id (it stores only the id's other word): a
        // SeqNoRequest for the subnet must name the owner's id to be answered.
        let held = h.router.fallbackRoutes()
        #expect(held.count == 1)
        #expect(held.first?.routerId == node)
        #expect(held.first?.metric == .infinite)
        // A new router id of the owner (a restart) replaces it.
        let restarted = RouterId(publicKey: node.publicKey, zone: 3, random: 0xABCDEF)
        h.receive(Harness.update(restarted, metric: 10), from: 1)
        #expect(h.router.selectedRoutes().map(\.routerId) == [restarted])
        #expect(h.router.selectedRoutes().first?.routerId.zone == 3)
    }

    @Test("a retraction from the next hop loses the route: SeqNoRequest, retraction to all, RouteRequest")
    func retractionFromNextHop() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0), from: 1)
        let out = h.receive(Harness.update(h.makeNode(), metric: 0xFFFF, subnet: node.publicKey.subnet), from: 1)
        #expect(out.contains(.routeLost(node.publicKey.subnet)))
        let retractions = Harness.updates(out).filter { $0.0.isRetraction }
        #expect(Set(retractions.map(\.1)) == [NeighbourId(1), NeighbourId(2)])
        #expect(retractions.allSatisfy { $0.0.routerId == h.router.routerId })
        #expect(Harness.seqnoRequests(out).map(\.1) == [NeighbourId(1)])
        #expect(Harness.seqnoRequests(out).first?.0.seqno == SeqNo(1))
        #expect(Set(Harness.routeRequests(out).map(\.1)) == [NeighbourId(1), NeighbourId(2)])
        #expect(h.router.nextHop(for: node.publicKey.subnet) == nil)
    }

    @Test("a forged retraction from a neighbour that is not the next hop changes nothing")
    func forgedRetraction() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0), from: 1)
        let forged = h.receive(Harness.update(h.makeNode(), metric: 0xFFFF, subnet: node.publicKey.subnet), from: 2)
        #expect(forged.isEmpty)
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(1))
        #expect(h.router.fallbackRoutes().isEmpty)
    }

    @Test("an infeasible update from the selected next hop is not applied; a SeqNoRequest asks for a newer seqno")
    func infeasibleFromNextHop() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0, seqno: 3), from: 1)  // advertised as 1010 → fd (1010, 3)
        let out = h.receive(Harness.update(node, metric: 2000, seqno: 3), from: 1)
        #expect(Harness.seqnoRequests(out).map { $0.0.seqno } == [SeqNo(4)])
        #expect(h.router.selectedRoutes().first?.metric == .zero)
        // A newer seqno is feasible whatever its metric.
        h.receive(Harness.update(node, metric: 2000, seqno: 4), from: 1)
        #expect(h.router.selectedRoutes().first?.metric == Metric(2000))
    }

    @Test("expiry: a selected route expires after 3.5 × interval, is held 6 s as a retraction, then removed")
    func expiry() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0, interval: 100), from: 1)  // hold 3.5 s
        // Keep the neighbour alive while time passes.
        let out = h.advance(to: 3_500)
        #expect(out.contains(.routeLost(node.publicKey.subnet)))
        #expect(h.router.routes[node.publicKey.subnet]?.entries.first?.metric == .infinite)
        h.advance(to: 9_499)
        #expect(h.router.routes[node.publicKey.subnet] != nil)
        h.advance(to: 9_500)
        #expect(h.router.routes[node.publicKey.subnet] == nil)
        #expect(h.router.stats.expiredRoutesRetracted == 1 && h.router.stats.expiredRoutesRemoved == 1)
    }

    @Test("removing the next hop retracts its selected routes and keeps the others' fallbacks")
    func neighbourRemoval() {
        var h = Harness()
        h.add(1); h.add(2)
        let node = h.makeNode()
        h.receive(Harness.update(node, metric: 0, seqno: 1), from: 1)
        h.receive(Harness.update(node, metric: 5, seqno: 2), from: 2)  // newer seqno: feasible fallback
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(1))
        let out = h.handle(.neighbourRemoved(NeighbourId(1)))
        #expect(h.router.nextHop(for: node.publicKey.subnet) == NeighbourId(2))
        #expect(!out.contains(.routeLost(node.publicKey.subnet)))
        #expect(Harness.updates(out).contains { $0.1 != NeighbourId(2) && !$0.0.isRetraction } == false)
    }
}
