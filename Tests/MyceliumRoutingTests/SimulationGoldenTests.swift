import MyceliumTesting
import Testing

/// The simulator's results for fixed seeds. They were recorded before the router's tables were
/// made compact (source table keyed by subnet, neighbours in a sorted table, owner checks
/// skipped for known subnets, the simulator's bucketed queue) and stayed identical through
/// that work. They changed twice on purpose since (docs/routing.md): a waiting SeqNoRequest
/// selects a feasible route that carries the awaited seqno, and lost routes are asked for
/// again with backoff. With both, every scenario below with cuts reconverges fully (the ring
/// did not before). Any other change to one convergence time, control byte or path must be a
/// deliberate protocol change, not a side effect.
/// `bench/simulate.sh` checks the same fields at scale (bench/simulate-golden.tsv).
@Suite struct SimulationGoldenTests {
    static let golden: [(SimulationScenario, String)] = [
        (SimulationScenario(nodes: 200, topology: .grid, seed: 3, durationS: 90, cutLinks: 10, cutAtS: 40),
         #"{"nodes": 200, "links": 371, "topology": "grid", "seed": 3, "duration_s": 90.0, "converged_at_s": 0.189, "reachable_pairs_fraction": 1.0, "connected_pairs_fraction": 1.0, "loops": 0, "max_path_stretch": 2.0, "control_packets_total": 243769, "control_bytes_total": 15992457, "control_bytes_per_node": 79962, "links_cut": 10, "reconverged_at_s": 46.103}"#),
        (SimulationScenario(nodes: 100, topology: .line, seed: 4, durationS: 60),
         #"{"nodes": 100, "links": 99, "topology": "line", "seed": 4, "duration_s": 60.0, "converged_at_s": 1.081, "reachable_pairs_fraction": 1.0, "connected_pairs_fraction": 1.0, "loops": 0, "max_path_stretch": 1.0, "control_packets_total": 11415, "control_bytes_total": 713850, "control_bytes_per_node": 7138, "links_cut": 0, "reconverged_at_s": null}"#),
        (SimulationScenario(nodes: 120, topology: .ring, seed: 5, durationS: 100, cutLinks: 1),
         #"{"nodes": 120, "links": 120, "topology": "ring", "seed": 5, "duration_s": 100.0, "converged_at_s": 0.617, "reachable_pairs_fraction": 1.0, "connected_pairs_fraction": 1.0, "loops": 0, "max_path_stretch": 1.0, "control_packets_total": 56006, "control_bytes_total": 3303058, "control_bytes_per_node": 27525, "links_cut": 1, "reconverged_at_s": 67.052}"#),
        (SimulationScenario(nodes: 64, topology: .random, degree: 2, seed: 7, loss: 0.05, cutLinks: 8),
         #"{"nodes": 64, "links": 64, "topology": "random", "seed": 7, "duration_s": 120.0, "converged_at_s": 1.514, "reachable_pairs_fraction": 0.7127976190476191, "connected_pairs_fraction": 0.7127976190476191, "loops": 0, "max_path_stretch": 1.0, "control_packets_total": 22164, "control_bytes_total": 1103311, "control_bytes_per_node": 17239, "links_cut": 8, "reconverged_at_s": 67.078}"#),
    ]

    @Test("fixed seeds give the recorded results, field for field", arguments: golden.indices)
    func replays(_ index: Int) {
        let (scenario, expected) = Self.golden[index]
        #expect(SimulationScenario.json(scenario.fields(scenario.run())) == expected)
    }
}
