import MyceliumCore

/// One neighbour's announcement of a subnet.
struct RouteEntry {
    let neighbour: NeighbourId
    var routerId: RouterId
    var seqno: SeqNo
    /// The metric the neighbour advertised (without our link cost to it).
    var metric: Metric
    var expires: Instant
}

/// All announcements of one subnet, and which (if any) is selected.
struct SubnetRoutes {
    /// The subnet's owner, from the router id of the Update that created this entry (spec §4.1).
    let owner: PublicKey
    var entries: [RouteEntry] = []
    var selected: NeighbourId?

    func index(of neighbour: NeighbourId) -> Int? {
        entries.firstIndex { $0.neighbour == neighbour }
    }

    var selectedEntry: RouteEntry? {
        guard let selected, let i = index(of: selected) else { return nil }
        return entries[i]
    }
}

extension SubnetRoutes: SubnetTableValue {
    private static let noOwner = PublicKey(bytes: [UInt8](repeating: 0, count: PublicKey.length))!
    static var vacant: SubnetRoutes { SubnetRoutes(owner: noOwner) }
}
