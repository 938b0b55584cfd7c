public import MyceliumCore

/// An immutable longest-prefix-match snapshot for the datapath (subnet → next hop, metric, owner).
///
/// The router builds one when asked after `RouterAction.forwardingTableChanged`; the datapath
/// swaps it in atomically and reads it without locks. Every accepted route is a /64 or longer
/// (the Update filter guarantees it), so a lookup is one hash probe on the address's upper 64
/// bits, after a scan of the (normally empty) list of longer prefixes.
public struct ForwardingTable: Sendable {
    public struct Entry: Hashable, Sendable {
        public let subnet: Subnet
        /// Nil when the subnet is known (key available) but no route is selected.
        public let nextHop: NeighbourId?
        /// Total metric through the next hop (advertised metric + link cost).
        public let metric: Metric
        public let owner: PublicKey
        /// When the selected route expires unless refreshed.
        public let expires: Instant

        public init(subnet: Subnet, nextHop: NeighbourId?, metric: Metric, owner: PublicKey, expires: Instant) {
            self.subnet = subnet
            self.nextHop = nextHop
            self.metric = metric
            self.owner = owner
            self.expires = expires
        }
    }

    public enum Lookup: Hashable, Sendable {
        /// Inside our own /64: deliver locally.
        case local
        case route(Entry)
        case none
    }

    public let localSubnet: Subnet
    private let slash64: [UInt64: Entry]
    private let longer: [Entry]

    public init(localSubnet: Subnet, entries: [Entry]) {
        self.localSubnet = localSubnet
        var slash64: [UInt64: Entry] = [:]
        var longer: [Entry] = []
        for e in entries {
            guard let address = e.subnet.ipv6 else { continue }
            if e.subnet.prefixLength == 64 { slash64[address.high] = e } else if e.subnet.prefixLength > 64 { longer.append(e) }
        }
        self.slash64 = slash64
        self.longer = longer.sorted { $0.subnet.prefixLength > $1.subnet.prefixLength }
    }

    public static func empty(localSubnet: Subnet) -> ForwardingTable {
        ForwardingTable(localSubnet: localSubnet, entries: [])
    }

    public func lookup(_ destination: IPv6Address) -> Lookup {
        if localSubnet.contains(destination) { return .local }
        for e in longer where e.subnet.contains(destination) { return .route(e) }
        if let e = slash64[destination.high] { return .route(e) }
        return .none
    }

    public var count: Int { slash64.count + longer.count }

    public var entries: [Entry] { Array(slash64.values) + longer }
}
