public import MyceliumCore

/// Read-only views of the router's tables, for the API and for tests.
public struct RouteSnapshot: Hashable, Sendable {
    public let subnet: Subnet
    public let neighbour: NeighbourId
    public let routerId: RouterId
    public let seqno: SeqNo
    /// As advertised by the neighbour (without our link cost), like Rust's API shows it.
    public let metric: Metric
    public let expires: Instant
}

extension Router {
    /// The selected route of every subnet.
    public func selectedRoutes() -> [RouteSnapshot] {
        routes.compactMap { subnet, r in r.selectedEntry.map { snapshot(subnet, r, $0) } }
            .sorted { ($0.subnet, $0.neighbour) < ($1.subnet, $1.neighbour) }
    }

    /// Every route that is not selected.
    public func fallbackRoutes() -> [RouteSnapshot] {
        routes.flatMap { subnet, r in r.entries.filter { $0.neighbour != r.selected }.map { snapshot(subnet, r, $0) } }
            .sorted { ($0.subnet, $0.neighbour) < ($1.subnet, $1.neighbour) }
    }

    /// Subnets being looked for, with the time their query expires.
    public func queriedSubnets(now: Instant) -> [(subnet: Subnet, expires: Instant)] {
        queried.filter { $0.value > now }.map { ($0.key, $0.value) }.sorted { $0.subnet < $1.subnet }
    }

    /// The public key owning the /64 of `address` while any route to it is known: what
    /// `GET /api/v1/pubkey/{ip}` answers. The key checked when the subnet was first announced,
    /// not an entry's router id: a retraction carries its sender's id (spec §5.9).
    public func owner(of address: IPv6Address) -> PublicKey? {
        routes[Subnet.slash64(of: address)].map { owners[$0.owner] }
    }

    /// The selected next hop for a subnet, if any.
    public func nextHop(for subnet: Subnet) -> NeighbourId? { selection(of: subnet)?.neighbour }

    /// Every subnet that `nextHop(for:)` answers for, with that answer, in no particular order:
    /// one pass over the table, for checks of a whole network (a lookup per subnet costs a
    /// cache miss each once the table outgrows the cache).
    public func forEachNextHop(_ body: (Subnet, NeighbourId) -> Void) {
        routes.forEachSlot { subnet, slot in
            if let sel = selection(at: slot) { body(subnet, sel.neighbour) }
        }
    }

    /// The selected route's total metric (advertised + link cost), if any.
    public func totalMetric(for subnet: Subnet) -> Metric? { selection(of: subnet)?.metric }

    /// Whether our feasibility state would accept (seqno, metric) for (subnet, router id).
    public func isFeasible(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric) -> Bool {
        // The source table holds only the owner's ids and ours: any other key has no source.
        guard routerId.publicKey == self.routerId.publicKey || subnet.contains(routerId.publicKey.overlayAddress) else {
            return true
        }
        return sources.isFeasible(subnet: subnet, routerId: routerId, seqno: seqno, metric: metric)
    }

    private func snapshot(_ subnet: Subnet, _ r: SubnetRoutes, _ e: RouteEntry) -> RouteSnapshot {
        RouteSnapshot(subnet: subnet, neighbour: e.neighbour, routerId: fullRouterId(of: e, in: r), seqno: e.seqno, metric: e.metric, expires: e.expires)
    }
}
