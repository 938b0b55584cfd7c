import MyceliumCore
import MyceliumRouting
import MyceliumTesting
import Testing

/// Whole networks on virtual time. Every run has a fixed seed and replays exactly; no sleeps.
@Suite struct SimulationTests {
    static func build(_ topology: Topology, nodes: Int, degree: Int = 4, seed: UInt64 = 1, latencyMs: Int64? = nil) -> Simulator {
        let sim = Simulator(nodes: nodes, seed: seed)
        var rng = SeededRandom(seed: seed ^ 0x70B0_1061)
        for (a, b) in topology.edges(nodes: nodes, degree: degree, rng: &rng) { sim.addLink(a, b, latencyMs: latencyMs) }
        return sim
    }

    static func expectHealthy(_ sim: Simulator, _ what: String) {
        let report = sim.analysePaths()
        #expect(report.loops == 0, "\(what): \(report.loops) looping pairs")
        #expect(report.reachablePairs == report.connectedPairs, "\(what): \(report.reachablePairs)/\(report.connectedPairs) pairs reachable")
    }

    @Test("converge to full reachability with no loops", arguments: [
        (Topology.line, 10, 4), (.ring, 50, 4), (.grid, 100, 4), (.random, 200, 4),
    ])
    func converge(topology: Topology, nodes: Int, degree: Int) {
        let sim = Self.build(topology, nodes: nodes, degree: degree)
        sim.run(until: Instant(milliseconds: 30_000))
        #expect(sim.firstFullyConverged != nil, "\(topology) \(nodes) never converged")
        #expect(sim.isFullyConverged())
        let report = sim.analysePaths()
        #expect(report.reachablePairs == report.totalPairs)
        #expect(report.loops == 0)
    }

    @Test("nodes joining over 20 s build a loop-free network that converges after the last one joins; the same seed replays")
    func staggeredStart() {
        let scenario = SimulationScenario(nodes: 150, topology: .random, degree: 4, seed: 4, durationS: 60, startSpreadS: 20)
        let outcome = scenario.run()
        #expect(outcome.reachablePairsFraction == 1.0)
        #expect(outcome.loops == 0)
        // Not before the last link came up, nor long after (each join converges within seconds).
        #expect((outcome.convergedAtS ?? 0) > 15)
        #expect((outcome.convergedAtS ?? .infinity) < 25)
        #expect(scenario.fields(outcome).last?.0 == "start_spread_s")
        #expect(scenario.run() == outcome)
        // Everything at once floods every table together: the same network converges at once.
        let atOnce = SimulationScenario(nodes: 150, topology: .random, degree: 4, seed: 4, durationS: 60).run()
        #expect((atOnce.convergedAtS ?? .infinity) < 1)
    }

    @Test("a link cut before both its ends have started never comes up")
    func cutBeforeStart() {
        // Every link of a line is cut at 5 s while its nodes join over 20 s: none is up at the
        // end (a link whose ends start after the cut used to come up anyway).
        let outcome = SimulationScenario(nodes: 20, topology: .line, degree: 1, seed: 7, durationS: 30, cutLinks: 19, cutAtS: 5,
                                         startSpreadS: 20).run()
        #expect(outcome.linksCut == 19)
        #expect(outcome.connectedPairsFraction == 0)
    }

    @Test("forEachNextHop visits exactly the subnets nextHop(for:) answers, with its answers, mid-convergence and after a cut")
    func forEachNextHopAgrees() {
        let sim = Self.build(.random, nodes: 60, degree: 3)
        func check(_ what: String) {
            let subnets = (0..<sim.nodeCount).map { sim.subnet(of: $0) }
            for node in 0..<sim.nodeCount {
                var visited: [Subnet: NeighbourId] = [:]
                sim.routers[node].forEachNextHop { subnet, hop in
                    #expect(visited.updateValue(hop, forKey: subnet) == nil, "\(what): \(subnet) visited twice")
                }
                var expected: [Subnet: NeighbourId] = [:]
                for s in subnets { expected[s] = sim.routers[node].nextHop(for: s) }
                #expect(visited == expected, "\(what): node \(node)")
            }
        }
        sim.run(until: Instant(milliseconds: 40))  // partly converged: some routes missing
        check("early")
        sim.run(until: Instant(milliseconds: 30_000))
        check("converged")
        for link in 0..<5 { sim.setLink(link, up: false) }
        sim.run(until: Instant(milliseconds: 30_050))  // routes lost and retracted in flight
        check("after cuts")
    }

    @Test("cutting links in a ring re-converges the long way round, with no loops")
    func ringCut() {
        let sim = Self.build(.ring, nodes: 50)
        sim.run(until: Instant(milliseconds: 30_000))
        sim.setLink(0, up: false)
        sim.run(until: Instant(milliseconds: 31_000))
        #expect(sim.analysePaths().loops == 0, "loops right after the cut")
        sim.run(until: Instant(milliseconds: 90_000))
        #expect(sim.isFullyConverged())
        Self.expectHealthy(sim, "ring after cut")
    }

    @Test("a partition heals: both halves reach each other again after the links return")
    func partitionHeals() {
        let sim = Self.build(.ring, nodes: 20)
        sim.run(until: Instant(milliseconds: 20_000))
        sim.setLink(0, up: false)
        sim.setLink(10, up: false)
        sim.run(until: Instant(milliseconds: 60_000))
        let split = sim.analysePaths()
        #expect(split.reachablePairs == split.connectedPairs && split.connectedPairs == 2 * 10 * 9)
        #expect(split.loops == 0)
        sim.setLink(0, up: true)
        sim.setLink(10, up: true)
        sim.run(until: Instant(milliseconds: 120_000))
        #expect(sim.isFullyConverged())
        Self.expectHealthy(sim, "healed ring")
    }

    @Test("a restarted node (new router id, seqno 0) is reachable again")
    func restart() {
        let sim = Self.build(.random, nodes: 40, degree: 3)
        sim.run(until: Instant(milliseconds: 20_000))
        let oldId = sim.routers[7].routerId
        sim.restartNode(7, downMs: 2_000)
        sim.run(until: Instant(milliseconds: 90_000))
        #expect(sim.routers[7].routerId != oldId && sim.routers[7].routerId.publicKey == oldId.publicKey)
        #expect(sim.isFullyConverged())
        Self.expectHealthy(sim, "after restart")
        // Everyone's route to the restarted node carries its new router id.
        let subnet = sim.subnet(of: 7)
        for i in 0..<sim.nodeCount where i != 7 {
            #expect(sim.routers[i].selectedRoutes().first { $0.subnet == subnet }?.routerId == sim.routers[7].routerId)
        }
    }

    @Test("a node announcing a /64 it does not own is ignored by everyone")
    func hijack() {
        let sim = Self.build(.line, nodes: 6)
        sim.run(until: Instant(milliseconds: 10_000))
        // Node 0 claims node 5's /64 with its own router id, towards node 1.
        let fake = Update(interval: 30_000, seqno: SeqNo(100), metric: .zero, subnet: sim.subnet(of: 5), routerId: sim.routers[0].routerId)
        sim.inject(.update(fake), into: 1, overLink: 0)
        sim.run(until: Instant(milliseconds: 20_000))
        for i in 1..<5 {
            #expect(sim.routers[i].selectedRoutes().first { $0.subnet == sim.subnet(of: 5) }?.routerId == sim.routers[5].routerId)
        }
        #expect(sim.routers[1].stats.updatesDenied == 1)
        Self.expectHealthy(sim, "after hijack attempt")
    }

    @Test("a forged retraction from a neighbour that is not the next hop changes nothing")
    func forgedRetraction() {
        let sim = Self.build(.line, nodes: 5)
        sim.run(until: Instant(milliseconds: 10_000))
        // Node 2 routes to node 4 via node 3 (link 2). Node 1 (link 1) forges a retraction of it.
        let before = sim.routers[2].selectedRoutes()
        let forged = Update(interval: 30_000, seqno: SeqNo(500), metric: .infinite, subnet: sim.subnet(of: 4), routerId: sim.routers[1].routerId)
        sim.inject(.update(forged), into: 2, overLink: 1)
        sim.run(until: Instant(milliseconds: 20_000))
        #expect(sim.routers[2].selectedRoutes() == before)
        Self.expectHealthy(sim, "after forged retraction")
    }

    @Test("lossy links still converge; the same seed replays exactly, also through the wire codec")
    func lossAndDeterminism() {
        func run(codec: Bool) -> (Int, Int, Instant?) {
            let sim = Simulator(nodes: 30, seed: 9)
            sim.roundTripThroughCodec = codec
            var rng = SeededRandom(seed: 9)
            for (a, b) in Topology.random.edges(nodes: 30, degree: 4, rng: &rng) { sim.addLink(a, b, loss: 0.05) }
            sim.run(until: Instant(milliseconds: 120_000))
            Self.expectHealthy(sim, "lossy")
            return (sim.controlPackets, sim.controlBytes, sim.firstFullyConverged)
        }
        let a = run(codec: false), b = run(codec: false), c = run(codec: true)
        #expect(a == b)
        #expect(a == c)
        #expect(a.2 != nil)
    }
}
