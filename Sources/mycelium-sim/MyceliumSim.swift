public import ArgumentParser
import MyceliumRouting
import MyceliumTesting
#if canImport(Glibc)
import Glibc
#endif

/// Explore the routing protocol at scale: N routers on virtual time, wired in a topology,
/// optionally with links cut mid-run. Prints what converged, when, and at what cost.
@main
struct MyceliumSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mycelium-sim",
        abstract: "Simulate many Mycelium routers on a virtual clock.",
        discussion: "The same seed replays the same run exactly."
    )

    @Option(help: "Number of nodes.") var nodes = 100
    @Option(help: "line, ring, grid or random.") var topology: Topology = .random
    @Option(help: "Average degree of the random topology.") var degree = 4
    @Option(help: "Seed for keys, topology, latencies and losses.") var seed: UInt64 = 1
    @Option(help: "Virtual seconds to simulate.") var duration: Double = 120
    @Option(help: "Per-link latency in ms (default: random 1–20 per link).") var latencyMs: Int64?
    @Option(help: "Probability that a control packet is lost on a link.") var loss: Double = 0
    @Option(help: "Number of random links to cut.") var cutLinks = 0
    @Option(help: "Virtual second at which links are cut.") var cutAt: Double = 60
    @Flag(help: "Emit one JSON object.") var json = false

    func validate() throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard degree >= 1 else { throw ValidationError("--degree must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be in [0, 1)") }
        guard cutLinks >= 0 else { throw ValidationError("--cut-links must not be negative") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let sim = Simulator(nodes: nodes, seed: seed)
        var rng = SeededRandom(seed: seed ^ 0x70B0_1061)
        let edges = topology.edges(nodes: nodes, degree: degree, rng: &rng)
        for (a, b) in edges { sim.addLink(a, b, latencyMs: latencyMs, loss: loss) }

        let cutTime = Instant(milliseconds: Int64(cutAt * 1000))
        var cut: [Int] = []
        if cutLinks > 0 {
            var indices = Array(sim.links.indices)
            indices.shuffle(using: &rng)
            cut = Array(indices.prefix(cutLinks))
            sim.at(cutTime) { for l in cut { sim.setLink(l, up: false) } }
        }
        let end = Instant(milliseconds: Int64(duration * 1000))
        sim.run(until: end)
        let report = sim.analysePaths()
        let wallMs = Double((clock.now - started).components.attoseconds / 1_000_000_000_000_000)
            + Double((clock.now - started).components.seconds) * 1000

        var reconverged: Double?
        if !cut.isEmpty, cutTime <= end, report.loops == 0, report.reachablePairs == report.connectedPairs {
            reconverged = Double(max(sim.lastRouteChange, cutTime).milliseconds) / 1000
        }
        let fields: [(String, String)] = [
            ("nodes", "\(nodes)"),
            ("links", "\(edges.count)"),
            ("topology", "\"\(topology.rawValue)\""),
            ("seed", "\(seed)"),
            ("duration_s", "\(duration)"),
            ("converged_at_s", sim.firstFullyConverged.map { "\(Double($0.milliseconds) / 1000)" } ?? "null"),
            ("reachable_pairs_fraction", "\(Double(report.reachablePairs) / Double(report.totalPairs))"),
            ("connected_pairs_fraction", "\(Double(report.connectedPairs) / Double(report.totalPairs))"),
            ("loops", "\(report.loops)"),
            ("max_path_stretch", "\(report.maxStretch)"),
            ("control_packets_total", "\(sim.controlPackets)"),
            ("control_bytes_total", "\(sim.controlBytes)"),
            ("control_bytes_per_node", "\(sim.controlBytes / nodes)"),
            ("links_cut", "\(cut.count)"),
            ("reconverged_at_s", cut.isEmpty ? "null" : reconverged.map { "\($0)" } ?? "null"),
            ("wall_ms", "\(Int(wallMs))"),
            ("peak_rss_mb", "\(peakRSSMegabytes())"),
        ]
        if json {
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            let width = fields.map(\.0.count).max() ?? 0
            for (k, v) in fields { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
        }
    }

    private func peakRSSMegabytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }
}

extension Topology: ExpressibleByArgument {}
