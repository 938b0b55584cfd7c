/// Ways to wire a simulation's nodes together.
public enum Topology: String, CaseIterable, Sendable, Hashable {
    case line, ring, grid, random

    /// The edges for `nodes` nodes; `degree` is the average degree of `random`.
    public func edges(nodes n: Int, degree: Int, rng: inout SeededRandom) -> [(Int, Int)] {
        guard n > 1 else { return [] }
        switch self {
        case .line:
            return (0..<(n - 1)).map { ($0, $0 + 1) }
        case .ring:
            return (0..<n).map { ($0, ($0 + 1) % n) }.filter { n > 2 || $0.0 < $0.1 }
        case .grid:
            // As square as possible: width = ⌈√n⌉, the last row may be short.
            var width = 1
            while width * width < n { width += 1 }
            var edges: [(Int, Int)] = []
            for i in 0..<n {
                if (i + 1) % width != 0, i + 1 < n { edges.append((i, i + 1)) }
                if i + width < n { edges.append((i, i + width)) }
            }
            return edges
        case .random:
            // A random spanning tree keeps it connected; random extra edges bring the average
            // degree up to `degree`.
            var set = Set<[Int]>()
            var edges: [(Int, Int)] = []
            func add(_ a: Int, _ b: Int) {
                let key = [min(a, b), max(a, b)]
                guard a != b, set.insert(key).inserted else { return }
                edges.append((key[0], key[1]))
            }
            for i in 1..<n { add(i, Int.random(in: 0..<i, using: &rng)) }
            let target = min(n * max(degree, 1) / 2, n * (n - 1) / 2)
            var attempts = 0
            while edges.count < target, attempts < target * 20 {
                add(Int.random(in: 0..<n, using: &rng), Int.random(in: 0..<n, using: &rng))
                attempts += 1
            }
            return edges
        }
    }
}
