import MyceliumCore

/// The router's neighbours by id: ids in a sorted array, searched by bisection.
///
/// A node has a handful of neighbours (at most the transport's inbound limit plus the peers it
/// dials), and every Update looks several of them up: comparing 64-bit ids is cheaper than
/// hashing them, and the sorted ids are what Updates and Hellos iterate in any case.
struct NeighbourTable {
    /// Sorted ascending; `values[i]` belongs to `ids[i]`.
    private(set) var ids: [NeighbourId] = []
    private var values: [Neighbour] = []

    var count: Int { ids.count }

    /// The index of `id`, or where it would be inserted (first index with a larger id).
    private func position(of id: NeighbourId) -> (index: Int, found: Bool) {
        var low = 0, high = ids.count
        while low < high {
            let mid = (low + high) / 2
            if ids[mid] < id { low = mid + 1 } else { high = mid }
        }
        return (low, low < ids.count && ids[low] == id)
    }

    func contains(_ id: NeighbourId) -> Bool { position(of: id).found }

    /// A neighbour known to be in the table, read or changed in place (the optional subscript
    /// copies the whole neighbour, its rate buckets included, out and back).
    subscript(existing id: NeighbourId) -> Neighbour {
        _read {
            let p = position(of: id)
            precondition(p.found, "unknown neighbour")
            yield values[p.index]
        }
        _modify {
            let p = position(of: id)
            precondition(p.found, "unknown neighbour")
            yield &values[p.index]
        }
    }

    /// A neighbour's link cost, nil if unknown (read in place: the hot path of selection).
    func linkCost(of id: NeighbourId) -> Metric? {
        let p = position(of: id)
        return p.found ? values[p.index].linkCost : nil
    }

    subscript(id: NeighbourId) -> Neighbour? {
        get {
            let p = position(of: id)
            return p.found ? values[p.index] : nil
        }
        set {
            let p = position(of: id)
            switch (p.found, newValue) {
            case let (true, value?): values[p.index] = value
            case (true, nil):
                ids.remove(at: p.index)
                values.remove(at: p.index)
            case let (false, value?):
                ids.insert(id, at: p.index)
                values.insert(value, at: p.index)
            case (false, nil): break
            }
        }
    }
}
