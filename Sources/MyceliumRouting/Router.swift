public import MyceliumCore

/// The Mycelium Babel router (spec §5): a pure state machine.
///
/// Flow: the driver feeds `RouterEvent`s with the current time into `handle(_:now:)` and
/// performs the returned `RouterAction`s; it calls `handle(.timer, now:)` when `nextWakeUp`
/// is reached. No I/O, no clock, no Foundation: the same code runs in the daemon and in a
/// 1000-node simulation on virtual time.
///
/// Where Rust Mycelium has a behaviour the spec marks as a likely bug, the decision taken is
/// written down where it is made (search for "Rust:").
public struct Router: Sendable {
    public let routerId: RouterId
    public let localSubnet: Subnet
    public internal(set) var seqno = SeqNo(0)
    public internal(set) var stats = RouterStats()
    /// Subnets with a selected route (kept incrementally; simulations poll it).
    public internal(set) var selectedCount = 0

    var lastSeqnoBump: Instant?
    var neighbours = NeighbourTable()
    var routes = SubnetTable<SubnetRoutes>()
    var sources: SourceTable
    /// Subnets we are looking for (RouteRequest or SeqNoRequest outstanding) → query expiry.
    var queried: [Subnet: Instant] = [:]
    var routeRequests = RouteRequestCache()
    var seqnoRequests = SeqNoRequestCache()
    /// Queries the datapath may start (`RouterLimits.queryBurst`, `queriesPerSecond`).
    var queryBudget: TokenBucket
    /// Lost-route retries we may send (`RouterLimits.retryBurst`, `retriesPerSecond`).
    var retryBudget: TokenBucket

    var nextHello: Instant
    var nextDeadCheck: Instant
    var nextPropagation: Instant
    var nextGarbageCollection: Instant
    /// Lower bounds: nothing expires before them, so timers need not scan the tables earlier.
    var earliestRouteExpiry: Instant?
    var earliestQueryExpiry: Instant?
    /// Selected routes we lost and ask for again with backoff (at most
    /// `RouterLimits.pendingQueries`): a SeqNoRequest or its answer can be lost with a crashed
    /// peer, and nothing else would ask again.
    var lostRoutes: [Subnet: LostRoute] = [:]
    var earliestRetry: Instant?

    /// Address owned by each public key seen in Updates: BLAKE3 per Update would dominate the
    /// cost of a route flood. Bounded: cleared when it grows past `RouterTuning.ownerCacheLimit`.
    var ownerAddresses: [PublicKey: IPv6Address] = [:]

    var tableDirty = true
    var cachedTable: ForwardingTable?
    /// The subnets' owners' keys (`SubnetRoutes.owner` names them here).
    var owners: OwnerKeys

    /// Public keys whose derived address `ownerAddresses` keeps (`RouterTuning.ownerCacheLimit`).
    let ownerCacheLimit: Int

    /// `routerId` carries our public key; the /64 we own is derived from it. `ownerCacheLimit`:
    /// a simulation of thousands of routers keeps each one's cache small (it saves BLAKE3 in a
    /// route flood, and never changes a decision). `owners`: where the subnets' owner keys are
    /// kept, a pool of this router's own unless given (a simulation shares one among its
    /// routers, which hold the same keys).
    public init(routerId: RouterId, now: Instant, ownerCacheLimit: Int = RouterTuning.ownerCacheLimit, owners: OwnerKeys? = nil) {
        self.routerId = routerId
        self.owners = owners ?? OwnerKeys()
        self.sources = SourceTable(ourKey: routerId.publicKey)
        self.ownerCacheLimit = max(1, ownerCacheLimit)
        self.localSubnet = routerId.publicKey.subnet
        nextHello = now + ProtocolConstants.helloIntervalMs
        nextDeadCheck = now + ProtocolConstants.deadPeerCheckIntervalMs
        nextPropagation = now + ProtocolConstants.routePropagationIntervalMs
        nextGarbageCollection = now + RouterTuning.garbageCollectionIntervalMs
        retryBudget = TokenBucket(burst: RouterLimits.retryBurst, rate: RouterLimits.retriesPerSecond, perMs: 1000,
                                  now: now.milliseconds)
        queryBudget = TokenBucket(burst: RouterLimits.queryBurst, rate: RouterLimits.queriesPerSecond, perMs: 1000,
                                  now: now.milliseconds)
    }

    // MARK: - driving

    public mutating func handle(_ event: RouterEvent, now: Instant) -> [RouterAction] {
        var actions: [RouterAction] = []
        handle(event, now: now, into: &actions)
        return actions
    }

    public mutating func handle(_ event: RouterEvent, now: Instant, into actions: inout [RouterAction]) {
        let wasDirty = tableDirty
        tableDirty = false
        switch event {
        case let .neighbourAdded(id, cost): addNeighbour(id, staticCost: cost, now: now, into: &actions)
        case let .neighbourRemoved(id): removeNeighbour(id, died: false, now: now, into: &actions)
        case let .received(tlv, from): receive(tlv, from: from, now: now, into: &actions)
        case let .routeNeeded(address): routeNeeded(address, now: now, into: &actions)
        case .timer: timers(now: now, into: &actions)
        }
        if tableDirty {
            cachedTable = nil
            actions.append(.forwardingTableChanged)
        }
        tableDirty = tableDirty || wasDirty
    }

    /// When the driver must call `handle(.timer, now:)` next.
    public var nextWakeUp: Instant {
        var t = min(nextHello, nextDeadCheck, nextPropagation, nextGarbageCollection)
        if let r = earliestRouteExpiry { t = min(t, r) }
        if let q = earliestQueryExpiry { t = min(t, q) }
        if let r = earliestRetry { t = min(t, r) }
        return t
    }

    /// The current snapshot for the datapath (rebuilt only after a change).
    public mutating func forwardingTable() -> ForwardingTable {
        if let cachedTable { return cachedTable }
        var entries: [ForwardingTable.Entry] = []
        entries.reserveCapacity(routes.count)
        for (subnet, r) in routes {
            if let sel = r.selectedEntry, let cost = neighbours.linkCost(of: sel.neighbour) {
                entries.append(.init(subnet: subnet, nextHop: sel.neighbour, metric: sel.metric + cost,
                                     owner: owners[r.owner], expires: sel.expires))
            } else {
                entries.append(.init(subnet: subnet, nextHop: nil, metric: .infinite, owner: owners[r.owner], expires: .zero))
            }
        }
        let table = ForwardingTable(localSubnet: localSubnet, entries: entries)
        cachedTable = table
        tableDirty = false
        return table
    }

    // MARK: - neighbours (spec §5.4)

    mutating func addNeighbour(_ id: NeighbourId, staticCost: UInt16, now: Instant, into actions: inout [RouterAction]) {
        guard neighbours[id] == nil else { return }
        neighbours[id] = Neighbour(id: id, staticCost: staticCost, now: now)
        stats.peersAdded += 1
        // Spec §2: own /64 at once, then our outstanding queries.
        sendOwnUpdate(to: [id], now: now, into: &actions)
        for (subnet, expiry) in queried.sorted(by: { $0.key < $1.key }) where expiry > now {
            sendRouteRequest(subnet, generation: 0, to: [id], now: now, into: &actions)
        }
        // Beyond Rust: ask the new neighbour for its whole table (a wildcard RouteRequest, which
        // Rust nodes answer). Routing is on-demand, so without this a node that joins or rejoins
        // (restart, healed partition) learns nothing but its neighbours' own /64s until traffic
        // asks, and the routes it does learn flood on to its other neighbours as acquisitions.
        actions.append(.send(.routeRequest(RouteRequest(generation: 0, prefix: nil)), to: id))
    }

    mutating func removeNeighbour(_ id: NeighbourId, died: Bool, now: Instant, into actions: inout [RouterAction]) {
        guard neighbours[id] != nil else { return }
        // What was selected must be read while the neighbour still counts as alive.
        let affected = routes.keys.filter { routes[$0]!.index(of: id) != nil }.sorted().map { ($0, selection(of: $0)) }
        neighbours[id] = nil
        if died { stats.peersDied += 1 } else { stats.peersRemoved += 1 }
        routeRequests.forget(id)
        seqnoRequests.forget(id)
        for (subnet, before) in affected {
            // In place through the slot (the key subscript copies the entry out and back).
            let slot = routes.index(forKey: subnet)!
            routes[at: slot].withEntry(of: id) { r, i in
                if r.selected == id {
                    // Selected: hold it as a retraction for 6 s, then it expires.
                    r.entries[i].metric = .infinite
                    r.entries[i].expires = now + ProtocolConstants.retractedRouteHoldMs
                } else {
                    r.entries.remove(at: i)
                }
            }
            noteRouteExpiry(now + ProtocolConstants.retractedRouteHoldMs)
            reselect(subnet, before: before, slot: slot, now: now, into: &actions)
        }
    }

    /// Link cost of a neighbour, nil if unknown.
    public func linkCost(of id: NeighbourId) -> Metric? { neighbours[id]?.linkCost }

    /// Neighbours in id order.
    public var neighbourIds: [NeighbourId] { neighbours.ids }

    // MARK: - received TLVs

    mutating func receive(_ tlv: ControlTLV, from id: NeighbourId, now: Instant, into actions: inout [RouterAction]) {
        guard neighbours.contains(id) else {
            stats.tlvsDiscarded += 1
            return
        }
        stats.count(tlv)
        guard neighbours[existing: id].buckets.admit(tlv, now: now) else {
            stats.tlvsRateLimited += 1
            actions.append(.refused(id, .rateLimited))
            return
        }
        switch tlv {
        case .hello:
            // Reply at once: our reply delay is the RTT sample the peer measures.
            let cost = neighbours[existing: id].linkCost.rawValue
            actions.append(.send(.ihu(IHU(rxCost: cost, interval: ProtocolConstants.ihuIntervalCs)), to: id))
        case .ihu:
            neighbours[existing: id].recordIHU(now: now)
        case let .update(update):
            handleUpdate(update, from: id, now: now, into: &actions)
        case let .routeRequest(request):
            handleRouteRequest(request, from: id, now: now, into: &actions)
        case let .seqNoRequest(request):
            handleSeqNoRequest(request, from: id, now: now, into: &actions)
        }
    }
}

/// Counters with the meaning of Rust Mycelium's router metrics (spec §11).
public struct RouterStats: Hashable, Sendable {
    public var hellosReceived = 0
    public var ihusReceived = 0
    public var updatesReceived = 0
    public var routeRequestsReceived = 0
    public var wildcardRouteRequestsReceived = 0
    public var seqnoRequestsReceived = 0
    public var tlvsDiscarded = 0
    public var updatesDenied = 0
    public var peersAdded = 0
    public var peersRemoved = 0
    public var peersDied = 0
    public var routeSelections = 0
    /// Times the owner-key pool was replaced by a compacted one (`Router.compactOwners`).
    public var ownerPoolCompactions = 0
    public var triggeredUpdates = 0
    public var expiredRoutesRemoved = 0
    public var expiredRoutesRetracted = 0
    public var sourceKeysExpired = 0
    public var seqnoBumps = 0
    public var seqnoRepliesLocal = 0
    public var seqnoForwarded = 0
    public var seqnoDropped = 0
    public var seqnoRequestsSent = 0
    public var routeRequestsSent = 0
    public var routesLost = 0
    /// Lost routes asked for again (SeqNoRequest or RouteRequest; `RouterTuning.lostRouteRetries`).
    public var lostRouteRetries = 0
    /// Control TLVs dropped because their per-neighbour bucket was empty.
    public var tlvsRateLimited = 0
    /// Updates, requests and queries refused by a `RouterLimits` cap.
    public var limitsHit = 0

    mutating func count(_ tlv: ControlTLV) {
        switch tlv {
        case .hello: hellosReceived += 1
        case .ihu: ihusReceived += 1
        case .update: updatesReceived += 1
        case let .routeRequest(r): if r.isWildcard { wildcardRouteRequestsReceived += 1 } else { routeRequestsReceived += 1 }
        case .seqNoRequest: seqnoRequestsReceived += 1
        }
    }
}

/// Our own knobs (not protocol constants).
public enum RouterTuning {
    /// How often source-table and request-cache garbage is collected.
    public static let garbageCollectionIntervalMs: Int64 = 60_000
    /// Public keys whose derived address is remembered.
    /// Only Updates for a subnet not yet in the table (or announced under another key) consult
    /// it: a known subnet's owner is checked against the stored owner. Small, because a
    /// simulation holds one per router.
    public static let ownerCacheLimit = 4_096
    /// A router's own owner-key pool is compacted once it holds at least twice as many keys as
    /// the router has subnets plus this many: amortised, one key copied per key added.
    public static let ownerPoolSlack = 1_024
    /// A SeqNoRequest for the same (router id, prefix, seqno) is sent to a neighbour, or
    /// forwarded, at most once in this long; a retry after it goes through.
    public static let seqnoRetryMs: Int64 = 4_000
    /// A lost route is asked for again after 5, 10, 20, 40, 80 and 160 s, then given up
    /// (traffic for it still starts a query).
    public static let lostRouteRetryBaseMs: Int64 = 5_000
    public static let lostRouteRetries = 6
}

extension SubnetRoutes {
    /// Runs `body` on the entry of `neighbour` if there is one.
    mutating func withEntry(of neighbour: NeighbourId, _ body: (inout SubnetRoutes, Int) -> Void) {
        guard let i = index(of: neighbour) else { return }
        body(&self, i)
    }
}

/// A selected route that was lost, asked for again until one is selected or the retries end.
struct LostRoute {
    let routerId: RouterId
    var attempts = 0
    var next: Instant
}

extension Router {
    /// The whole router id of `entry`, one of `r.entries`.
    func fullRouterId(of entry: RouteEntry, in r: SubnetRoutes) -> RouterId {
        RouterId(publicKey: owners[r.owner], tail: entry.routerIdTail)
    }

    /// The reference of a new subnet's owner key. A pool of our own moves to a fresh one,
    /// holding only the keys in use, once it holds more than twice as many keys as we have
    /// subnets (plus 1024): owners come and go, and the pool never drops a key by itself.
    mutating func ownerRef(for key: PublicKey) -> OwnerKeys.Ref {
        if owners.compactable, owners.count >= 2 * routes.count + RouterTuning.ownerPoolSlack { compactOwners() }
        return owners.ref(for: key)
    }

    /// Moves every subnet's owner to a fresh pool.
    mutating func compactOwners() {
        let old = owners
        let fresh = OwnerKeys()
        // By position, not `forEachSlot`: writing the table inside its own closure copied it whole.
        for slot in 0..<routes.count { routes[at: slot].owner = fresh.ref(for: old[routes[at: slot].owner]) }
        owners = fresh
        stats.ownerPoolCompactions += 1
    }
}
