public import MyceliumCore

/// Something the router wants done. The driver (node or simulator) performs it.
public enum RouterAction: Hashable, Sendable {
    /// Send this TLV (in its own control packet) to one neighbour.
    case send(ControlTLV, to: NeighbourId)
    /// The neighbour stopped answering Hellos: close its connection.
    case disconnect(NeighbourId)
    /// A route to the subnet was selected: send the packets queued for it.
    case routeAcquired(Subnet)
    /// The subnet's selected route went away: answer its queued packets with "no route".
    case routeLost(Subnet)
    /// Nobody answered our query for the subnet in time: answer its queued packets with "no route".
    case queryFailed(Subnet)
    /// Selected routes changed: fetch `Router.forwardingTable()` and publish it.
    case forwardingTableChanged
    /// The neighbour hit one of our limits or sent something we refuse: the driver writes a
    /// (rate-limited) audit line. Nothing else is to be done; the router already dropped it.
    case refused(NeighbourId, Refusal)
}

/// Why the router refused something a neighbour sent (see `RouterLimits`, docs/security.md).
public enum Refusal: String, Hashable, Sendable, CaseIterable {
    /// A control TLV over its per-neighbour rate.
    case rateLimited = "control TLV over its rate"
    /// An Update for a prefix other than a /64 inside 400::/7, or for a /64 its router id does not own.
    case badUpdate = "update for a subnet its router id does not own, or not a /64"
    case routesPerNeighbour = "routes per neighbour limit"
    case subnets = "routing table size limit"
    case routerIdsPerSubnet = "router ids per subnet limit"
    case pendingQueries = "pending route queries limit"
    case requestCache = "request cache limit"
}

/// Things fed into the router; each comes with `now`.
public enum RouterEvent: Hashable, Sendable {
    case neighbourAdded(NeighbourId, staticCost: UInt16)
    case neighbourRemoved(NeighbourId)
    case received(ControlTLV, from: NeighbourId)
    /// The datapath has a packet for this address and no selected route (or one about to expire).
    case routeNeeded(IPv6Address)
    /// `nextWakeUp` was reached.
    case timer
}
