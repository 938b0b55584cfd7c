import MyceliumCore

/// One neighbour's announcement of a subnet: 32 bytes (a router holds one or more per subnet
/// of the network).
struct RouteEntry {
    let neighbour: NeighbourId
    /// The announcer's router id but its public key (`RouterId.tail`): that key is always the
    /// subnet's owner (`SubnetRoutes.owner`), because only an Update carrying the owner's key
    /// creates or refreshes an entry. A retraction, which carries its sender's router id
    /// (spec §5.9), changes the metric and leaves the id alone. `SubnetRoutes.routerId(of:)`
    /// gives the whole id.
    var routerIdTail: UInt64
    var expires: Instant
    var seqno: SeqNo
    /// The metric the neighbour advertised (without our link cost to it).
    var metric: Metric

    init(neighbour: NeighbourId, routerId: RouterId, seqno: SeqNo, metric: Metric, expires: Instant) {
        self.neighbour = neighbour
        self.routerIdTail = routerId.tail
        self.expires = expires
        self.seqno = seqno
        self.metric = metric
    }
}

/// All announcements of one subnet, and which (if any) is selected.
struct SubnetRoutes {
    /// The subnet's owner, from the router id of the Update that created this entry (spec §4.1).
    let owner: PublicKey
    var entries: [RouteEntry] = []
    var selected: NeighbourId?

    /// The whole router id of `entry` (one of `entries`).
    func routerId(of entry: RouteEntry) -> RouterId { RouterId(publicKey: owner, tail: entry.routerIdTail) }

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
