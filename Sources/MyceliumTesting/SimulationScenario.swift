import MyceliumRouting

/// One simulator run as `mycelium-sim` describes it: a topology, optional link cuts, a
/// duration. The same scenario always gives the same `Outcome` (the simulator's golden tests
/// compare it field by field across changes to the router's representation).
public struct SimulationScenario: Sendable, Hashable {
    public var nodes: Int
    public var topology: Topology
    public var degree: Int
    public var seed: UInt64
    public var durationS: Double
    public var latencyMs: Int64?
    public var loss: Double
    public var cutLinks: Int
    public var cutAtS: Double
    /// 0: every node starts at once (all links up at time 0). Otherwise each node starts at a
    /// uniformly random time below this many seconds, and a link comes up once both its ends
    /// have started: the network is built as nodes join, and only the joining nodes' tables
    /// are in flight at a time (at once, every table of the network floods together: the
    /// simulator's own memory peak, ~n² control packets in flight).
    public var startSpreadS: Double

    public init(nodes: Int, topology: Topology, degree: Int = 4, seed: UInt64 = 1, durationS: Double = 120,
                latencyMs: Int64? = nil, loss: Double = 0, cutLinks: Int = 0, cutAtS: Double = 60, startSpreadS: Double = 0) {
        self.startSpreadS = startSpreadS
        self.nodes = nodes
        self.topology = topology
        self.degree = degree
        self.seed = seed
        self.durationS = durationS
        self.latencyMs = latencyMs
        self.loss = loss
        self.cutLinks = cutLinks
        self.cutAtS = cutAtS
    }

    /// What a run produced: everything but wall time and memory, which vary.
    public struct Outcome: Sendable, Hashable {
        public var links = 0
        public var convergedAtS: Double?
        public var reachablePairsFraction = 0.0
        public var connectedPairsFraction = 0.0
        public var loops = 0
        public var maxPathStretch = 1.0
        public var controlPackets = 0
        public var controlBytes = 0
        public var linksCut = 0
        public var reconvergedAtS: Double?
        /// Control TLVs the routers dropped at a neighbour's rate limit, and other limits hit
        /// (`RouterStats.tlvsRateLimited`, `.limitsHit`), summed over the routers at the end.
        public var rateLimited = 0
        public var limitsHit = 0
    }

    public func run() -> Outcome {
        let sim = Simulator(nodes: nodes, seed: seed)
        var rng = SeededRandom(seed: seed ^ 0x70B0_1061)
        let edges = topology.edges(nodes: nodes, degree: degree, rng: &rng)
        for (a, b) in edges { sim.addLink(a, b, latencyMs: latencyMs, loss: loss, up: startSpreadS == 0) }

        let cutTime = Instant(milliseconds: Int64(cutAtS * 1000))
        var cut: [Int] = []
        if cutLinks > 0 {
            var indices = Array(sim.links.indices)
            indices.shuffle(using: &rng)
            cut = Array(indices.prefix(cutLinks))
            sim.at(cutTime) { for l in cut { sim.setLink(l, up: false) } }
        }
        if startSpreadS > 0 {
            // Drawn after everything else, so runs without a spread keep their results.
            let spreadMs = max(1, Int64(startSpreadS * 1000))
            let start = (0..<nodes).map { _ in Int64.random(in: 0..<spreadMs, using: &rng) }
            let cutSet = Set(cut)
            for (l, (a, b)) in edges.enumerated() {
                let up = Instant(milliseconds: max(start[a], start[b]))
                // A link cut before both its ends have started stays down.
                guard !(cutSet.contains(l) && up >= cutTime) else { continue }
                sim.at(up) { sim.setLink(l, up: true) }
            }
        }
        let end = Instant(milliseconds: Int64(durationS * 1000))
        sim.run(until: end)
        let report = sim.analysePaths()

        var outcome = Outcome()
        outcome.links = edges.count
        outcome.convergedAtS = sim.firstFullyConverged.map { Double($0.milliseconds) / 1000 }
        outcome.reachablePairsFraction = Double(report.reachablePairs) / Double(report.totalPairs)
        outcome.connectedPairsFraction = Double(report.connectedPairs) / Double(report.totalPairs)
        outcome.loops = report.loops
        outcome.maxPathStretch = report.maxStretch
        outcome.controlPackets = sim.controlPackets
        outcome.controlBytes = sim.controlBytes
        outcome.linksCut = cut.count
        for r in sim.routers {
            outcome.rateLimited += r.stats.tlvsRateLimited
            outcome.limitsHit += r.stats.limitsHit
        }
        if !cut.isEmpty, cutTime <= end, report.loops == 0, report.reachablePairs == report.connectedPairs {
            outcome.reconvergedAtS = Double(max(sim.lastRouteChange, cutTime).milliseconds) / 1000
        }
        return outcome
    }

    /// The `mycelium-sim --json` fields of a run, in order, without wall time and memory.
    public func fields(_ o: Outcome) -> [(String, String)] {
        [
            ("nodes", "\(nodes)"),
            ("links", "\(o.links)"),
            ("topology", "\"\(topology.rawValue)\""),
            ("seed", "\(seed)"),
            ("duration_s", "\(durationS)"),
            ("converged_at_s", o.convergedAtS.map { "\($0)" } ?? "null"),
            ("reachable_pairs_fraction", "\(o.reachablePairsFraction)"),
            ("connected_pairs_fraction", "\(o.connectedPairsFraction)"),
            ("loops", "\(o.loops)"),
            ("max_path_stretch", "\(o.maxPathStretch)"),
            ("control_packets_total", "\(o.controlPackets)"),
            ("control_bytes_total", "\(o.controlBytes)"),
            ("control_bytes_per_node", "\(o.controlBytes / nodes)"),
            ("links_cut", "\(o.linksCut)"),
            ("reconverged_at_s", o.reconvergedAtS.map { "\($0)" } ?? "null"),
        ] + (startSpreadS > 0 ? [("start_spread_s", "\(startSpreadS)")] : [])
            // Zero in ordinary runs (and in every recorded one): shown only when not.
            + (o.rateLimited > 0 ? [("tlvs_rate_limited", "\(o.rateLimited)")] : [])
            + (o.limitsHit > 0 ? [("limits_hit", "\(o.limitsHit)")] : [])
    }

    /// One JSON object of `fields`.
    public static func json(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
