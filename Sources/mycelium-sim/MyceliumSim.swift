public import ArgumentParser
import CMyceliumShims
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
    @Option(help: ArgumentHelp("Nodes start at random times below this many virtual seconds (default: all at once).",
                               discussion: "A link comes up once both its ends have started. Starting all at once floods every table together, which puts about n² control packets in flight: the simulator's memory peak at thousands of nodes."))
    var startSpread: Double = 0
    @Flag(help: "Emit one JSON object.") var json = false

    func validate() throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard degree >= 1 else { throw ValidationError("--degree must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be in [0, 1)") }
        guard cutLinks >= 0 else { throw ValidationError("--cut-links must not be negative") }
        guard startSpread >= 0, startSpread < duration else { throw ValidationError("--start-spread must be at least 0 and below --duration") }
        guard cutLinks == 0 || startSpread < cutAt else { throw ValidationError("--start-spread must be below --cut-at when links are cut") }
    }

    func run() throws {
        // Each router's tables grow by a quarter at a time, so every router frees buffers of up
        // to ~1 MB (10 000 routes) as it grows. glibc puts allocations that size on the heap
        // once it has freed a mapped chunk (its threshold rises to the freed size), and freed
        // heap chunks between live ones stay resident: at 1000 nodes a sixth of the peak. A
        // fixed threshold keeps them mapped, and freeing one returns it to the kernel.
        _ = cmyc_set_mmap_threshold(64 * 1024)
        let clock = ContinuousClock()
        let started = clock.now
        let scenario = SimulationScenario(nodes: nodes, topology: topology, degree: degree, seed: seed, durationS: duration,
                                          latencyMs: latencyMs, loss: loss, cutLinks: cutLinks, cutAtS: cutAt,
                                          startSpreadS: startSpread)
        let outcome = scenario.run()
        let elapsed = (clock.now - started).components
        let wallMs = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds / 1_000_000_000_000_000)
        let fields = scenario.fields(outcome) + [("wall_ms", "\(Int(wallMs))"), ("peak_rss_mb", "\(peakRSSMegabytes())")]
        if json {
            print(SimulationScenario.json(fields))
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
