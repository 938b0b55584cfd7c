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

    /// What an unused inline place of `RouteEntries` holds.
    static let unused = RouteEntry(neighbour: NeighbourId(0), routerId: RouterId(publicKey: SubnetRoutes.noOwner, tail: 0),
                                   seqno: SeqNo(0), metric: .infinite, expires: .zero)
}

/// A subnet's route entries in arrival order, as an array would hold them: the first two
/// inline in the table's slot, more in an array. A subnet has one entry per neighbour that
/// announces it, and most have one or two (two per subnet on average in the 1000-node
/// simulation, whose nodes have four neighbours: a route is not sent back to its next hop).
/// Inline, the selection reads the entries in the slot it has just found instead of one more
/// cache miss (and retain) on an array per Update, and 10⁶ arrays of 2 entries (112 bytes
/// each with their headers) are gone.
struct RouteEntries: RandomAccessCollection, MutableCollection {
    private var first = RouteEntry.unused
    private var second = RouteEntry.unused
    private var more: [RouteEntry] = []
    private var inlineCount: UInt8 = 0

    init() {}

    init(_ entries: some Sequence<RouteEntry>) {
        for e in entries { append(e) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { Int(inlineCount) + more.count }

    subscript(i: Int) -> RouteEntry {
        get {
            precondition(i >= 0 && i < endIndex, "route entry index out of range")
            switch i {
            case 0: return first
            case 1: return second
            default: return more[i - 2]
            }
        }
        _modify {
            precondition(i >= 0 && i < endIndex, "route entry index out of range")
            switch i {
            case 0: yield &first
            case 1: yield &second
            default: yield &more[i - 2]
            }
        }
    }

    mutating func append(_ e: RouteEntry) {
        switch inlineCount {
        case 0: first = e; inlineCount = 1
        case 1: second = e; inlineCount = 2
        default: more.append(e)
        }
    }

    /// Removes the entry at `i`, keeping the others in order.
    mutating func remove(at i: Int) {
        precondition(i >= 0 && i < endIndex, "route entry index out of range")
        for j in i..<(endIndex - 1) { self[j] = self[j + 1] }
        if more.isEmpty {
            inlineCount -= 1
            if inlineCount == 0 { first = .unused } else { second = .unused }
        } else {
            more.removeLast()
        }
    }
}

/// All announcements of one subnet, and which (if any) is selected: 96 bytes (the fields in
/// this order leave no padding but the entries' own).
struct SubnetRoutes {
    var entries = RouteEntries()
    var selected: NeighbourId?
    /// The subnet's owner, from the router id of the Update that created this entry (spec §4.1),
    /// in the router's `OwnerKeys`.
    var owner: OwnerKeys.Ref

    init(owner: OwnerKeys.Ref) {
        self.owner = owner
    }

    func index(of neighbour: NeighbourId) -> Int? {
        entries.firstIndex { $0.neighbour == neighbour }
    }

    var selectedEntry: RouteEntry? {
        guard let selected, let i = index(of: selected) else { return nil }
        return entries[i]
    }
}

extension SubnetRoutes: SubnetTableValue {
    static let noOwner = PublicKey(bytes: [UInt8](repeating: 0, count: PublicKey.length))!
    static var vacant: SubnetRoutes { SubnetRoutes(owner: OwnerKeys.Ref(raw: .max)) }
}
