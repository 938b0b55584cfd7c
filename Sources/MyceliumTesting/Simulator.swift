public import MyceliumCore
public import MyceliumRouting

/// Many routers on a virtual clock, joined by links with latency, loss and up/down state.
///
/// Flow: `run(until:)` pops the next event (a control packet arriving over a link, or a
/// router's wake-up), feeds it to that router, and turns the router's `send` actions into
/// deliveries `latency` ms later on the same link. Links behave like the TCP connections they
/// stand for: ordered, and when one goes down both ends see the neighbour removed at once.
/// Everything random comes from one seed, so a run replays exactly.
public final class Simulator {
    public struct Link: Sendable {
        public let a: Int
        public let b: Int
        public var latencyMs: Int64
        /// Probability that a packet's segment is lost. Links are TCP streams, so a loss is not a
        /// drop: the packet (and everything behind it) arrives one retransmission timeout late.
        public var loss: Double
        /// Latest delivery time scheduled in each direction (a→b, b→a): streams stay in order.
        var lastDelivery: (Int64, Int64) = (0, 0)
        public private(set) var isUp: Bool
        /// Each end's handle for the other while up; renewed on every reconnect.
        var idAtA: NeighbourId
        var idAtB: NeighbourId
        /// Bumped when the link goes down, so packets in flight on the old connection are lost.
        var epoch: Int32

        mutating func setUp(_ up: Bool) { isUp = up }
    }

    /// A plain value (no references): the queue moves millions of them, and a payload with a
    /// closure in it made every move a call through the type's value witness.
    ///
    /// 32 bytes: while 2000 nodes' tables flood at once, 7.7 M packets are in flight (the peak
    /// grows as n²), and a whole `ControlTLV` in each made an event 112 bytes. An Update (nearly
    /// all of them) travels as its fields, with its /64 as the network word and its router id
    /// as an index into `routerIds`; any other TLV waits in `parked`. The receiving end's
    /// handle for the sender is read from the link at delivery: a delivered packet's epoch is
    /// the link's, and a link's handles change only with its epoch.
    enum Event {
        case update(node: Int32, link: Int32, epoch: Int32, routerId: Int32, network: UInt64,
                    seqno: UInt16, metric: UInt16, interval: UInt16, flags: UInt8)
        /// Any other TLV: `parked[slot]`.
        case deliver(node: Int32, link: Int32, epoch: Int32, slot: Int32)
        case wake(node: Int)
        /// `scheduled[id]` runs.
        case act(id: Int)
    }

    /// Router ids of queued Updates, by index (a restarted node's new id is added on its first
    /// Update; at most one per router ever made).
    private var routerIds = RouterIdRegistry()
    /// TLVs other than /64 Updates in flight, and their free slots.
    private var parked: [ControlTLV?] = []
    private var freeParked: [Int32] = []

    // The state every event touches is exempt from run-time exclusivity checks: each access
    // cost a call into the runtime and a search of the thread's access set, 5 % of a 1000-node
    // run. Sound because nothing here overlaps accesses: the simulator runs on one thread, the
    // router is changed only through `modifyRouter`, and `at(_:_:)` bodies (which may call
    // back in) run only between events, outside every access.
    @exclusivity(unchecked) public private(set) var routers: [Router]
    @exclusivity(unchecked) public private(set) var links: [Link] = []
    @exclusivity(unchecked) public private(set) var now = Instant.zero
    /// Per node: neighbour handle → (link index, peer node).
    @exclusivity(unchecked) private var neighbourOf: [Handles]
    @exclusivity(unchecked) private var queue = EventQueue<Event>()
    @exclusivity(unchecked) private var scheduledWake: [Instant?]
    @exclusivity(unchecked) private var rng: SeededRandom
    private var nextNeighbourId: UInt64 = 1
    @exclusivity(unchecked) private var actions: [RouterAction] = []
    /// Bodies of `at(_:_:)` waiting for their time, by id.
    private var scheduled: [Int: () -> Void] = [:]
    private var nextScheduled = 0

    @exclusivity(unchecked) public private(set) var controlPackets = 0
    @exclusivity(unchecked) public private(set) var controlBytes = 0
    @exclusivity(unchecked) public private(set) var totalSelected = 0
    /// First time every node had a selected route to every other node's /64.
    public private(set) var firstFullyConverged: Instant?
    /// Last time any node's selected routes changed.
    public private(set) var lastRouteChange = Instant.zero
    /// Every TLV that was delivered is also run through the wire codec when true (slower).
    public var roundTripThroughCodec = false

    public var nodeCount: Int { routers.count }

    /// Each router's cache of owner addresses: 4096 in a daemon, ~400 kB a router once full,
    /// which 10 000 routers cannot afford; a smaller one only costs BLAKE3 time.
    static let ownerCacheLimit = 256

    /// One pool of owner keys for every router: they all hold the same keys (one per node).
    let owners = OwnerKeys(shared: true)

    /// Linux's minimum TCP retransmission timeout.
    static let retransmissionTimeoutMs: Int64 = 200

    public init(nodes: Int, seed: UInt64) {
        rng = SeededRandom(seed: seed)
        routers = []
        routers.reserveCapacity(nodes)
        neighbourOf = Array(repeating: Handles(), count: nodes)
        scheduledWake = Array(repeating: nil, count: nodes)
        for i in 0..<nodes {
            routers.append(Router(routerId: makeRouterId(), now: .zero, ownerCacheLimit: Self.ownerCacheLimit, owners: owners))
            schedule(i)
        }
        for (i, r) in routers.enumerated() {
            precondition(nodeOfSubnet.index(of: r.localSubnet.network) == Int32(i), "two nodes share a /64")
        }
    }

    /// Each node's /64 (its network word) → the node: a restarted node keeps its key, so this
    /// never changes. The whole-network passes look it up 10⁶ times each at 1000 nodes, where a
    /// `Dictionary` ran SipHash per lookup.
    private var nodeOfSubnet = WordIndex<UInt64> { $0 }

    private func node(of subnet: Subnet) -> Int32? {
        subnet.prefixLength == 64 ? nodeOfSubnet.find(subnet.network) : nil
    }

    /// Simulated identities need no X25519: any 32 bytes act as a public key, and the address
    /// is derived from them exactly as on the real network.
    private func makeRouterId(key: PublicKey? = nil) -> RouterId {
        RouterId(publicKey: key ?? PublicKey(bytes: rng.bytes(32))!, random: rng.next())
    }

    public func subnet(of node: Int) -> Subnet { routers[node].localSubnet }

    // MARK: - topology

    /// Adds a link and brings it up now (unless `up` is false: then `setLink` does later).
    /// Returns its index.
    @discardableResult
    public func addLink(_ a: Int, _ b: Int, latencyMs: Int64? = nil, loss: Double = 0, up: Bool = true) -> Int {
        let latency = latencyMs ?? Int64.random(in: 1...20, using: &rng)
        links.append(Link(a: a, b: b, latencyMs: latency, loss: loss, isUp: false,
                          idAtA: NeighbourId(0), idAtB: NeighbourId(0), epoch: 0))
        if up { setLink(links.count - 1, up: true) }
        return links.count - 1
    }

    /// Takes a link down or up now. Down: both ends lose the neighbour (like a reset TCP
    /// connection) and packets in flight are lost. Up: a new connection with fresh handles.
    public func setLink(_ index: Int, up: Bool) {
        guard links[index].isUp != up else { return }
        let l = links[index]
        if up {
            links[index].idAtA = NeighbourId(nextNeighbourId)
            links[index].idAtB = NeighbourId(nextNeighbourId + 1)
            nextNeighbourId += 2
            links[index].setUp(true)
            neighbourOf[l.a][links[index].idAtA] = (index, l.b)
            neighbourOf[l.b][links[index].idAtB] = (index, l.a)
            feed(l.a, .neighbourAdded(links[index].idAtA, staticCost: LinkCost.tcpIPv6))
            feed(l.b, .neighbourAdded(links[index].idAtB, staticCost: LinkCost.tcpIPv6))
        } else {
            links[index].setUp(false)
            links[index].epoch += 1
            neighbourOf[l.a][l.idAtA] = nil
            neighbourOf[l.b][l.idAtB] = nil
            feed(l.a, .neighbourRemoved(l.idAtA))
            feed(l.b, .neighbourRemoved(l.idAtB))
        }
    }

    /// Restarts a node: same key, new router id, seqno back to 0. Its links drop and reconnect
    /// `downMs` later, as the peers' connections would.
    public func restartNode(_ node: Int, downMs: Int64 = 1000) {
        let linked = links.indices.filter { (links[$0].a == node || links[$0].b == node) && links[$0].isUp }
        for l in linked { setLink(l, up: false) }
        let key = routers[node].routerId.publicKey
        updateSelected(node) { $0 = Router(routerId: makeRouterId(key: key), now: now, ownerCacheLimit: Self.ownerCacheLimit, owners: owners) }
        scheduledWake[node] = nil
        schedule(node)
        at(now + downMs) { [unowned self] in for l in linked { self.setLink(l, up: true) } }
    }

    /// Runs `body` at virtual time `t`.
    public func at(_ t: Instant, _ body: @escaping () -> Void) {
        scheduled[nextScheduled] = body
        queue.push(.act(id: nextScheduled), at: t.milliseconds)
        nextScheduled += 1
    }

    /// Injects a TLV as if `node`'s neighbour over `link` had sent it (for adversarial tests).
    public func inject(_ tlv: ControlTLV, into node: Int, overLink link: Int) {
        let l = links[link]
        feed(node, .received(tlv, from: node == l.a ? l.idAtA : l.idAtB))
    }

    // MARK: - running

    /// Processes events up to and including time `end`.
    public func run(until end: Instant) {
        while let t = queue.nextTime, t <= end.milliseconds {
            let (time, event) = queue.pop()!
            now = Instant(milliseconds: time)
            switch event {
            case let .update(node, link, epoch, routerId, network, seqno, metric, interval, flags):
                let l = links[Int(link)]
                guard l.epoch == epoch, l.isUp else { continue }
                let u = Update(flags: flags, interval: interval, seqno: SeqNo(seqno), metric: Metric(metric),
                               subnet: Subnet(IPv6Address(high: network, low: 0), prefixLength: 64)!,
                               routerId: routerIds[routerId])
                deliver(.update(u), to: Int(node), over: l)
            case let .deliver(node, link, epoch, slot):
                let tlv = parked[Int(slot)]!
                parked[Int(slot)] = nil
                freeParked.append(slot)
                let l = links[Int(link)]
                guard l.epoch == epoch, l.isUp else { continue }
                deliver(tlv, to: Int(node), over: l)
            case let .wake(node):
                guard scheduledWake[node] == now else { continue }
                scheduledWake[node] = nil
                feed(node, .timer)
            case let .act(id):
                let body = scheduled.removeValue(forKey: id)
                body?()
            }
        }
        now = end
    }

    private static func viaCodec(_ tlv: ControlTLV) -> ControlTLV {
        guard case let .control(decoded)? = try? FrameDecoder.decodeSingle(Packet.control(tlv).encode()) else {
            fatalError("codec round trip failed for \(tlv)")
        }
        return decoded
    }

    /// A TLV arriving at `node` over `link` (up, and of the epoch it was sent in).
    private func deliver(_ tlv: ControlTLV, to node: Int, over l: Link) {
        let delivered = roundTripThroughCodec ? Self.viaCodec(tlv) : tlv
        feed(node, .received(delivered, from: node == l.a ? l.idAtA : l.idAtB))
    }

    /// Queues `tlv` for delivery to `peer` over `link` at `arrival`.
    private func push(_ tlv: ControlTLV, to peer: Int, link: Int, epoch: Int32, at arrival: Int64) {
        if case let .update(u) = tlv, u.subnet.prefixLength == 64, case let .v6(a) = u.subnet.address {
            queue.push(.update(node: Int32(peer), link: Int32(link), epoch: epoch, routerId: routerIds.index(of: u.routerId),
                               network: a.high, seqno: u.seqno.rawValue, metric: u.metric.rawValue,
                               interval: u.interval, flags: u.flags), at: arrival)
            return
        }
        let slot: Int32
        if let free = freeParked.popLast() {
            slot = free
            parked[Int(slot)] = tlv
        } else {
            slot = Int32(parked.count)
            parked.append(tlv)
        }
        queue.push(.deliver(node: Int32(peer), link: Int32(link), epoch: epoch, slot: slot), at: arrival)
    }

    private func feed(_ node: Int, _ event: RouterEvent) {
        actions.removeAll(keepingCapacity: true)
        let wake = updateSelected(node) { router in
            router.handle(event, now: now, into: &actions)
            return router.nextWakeUp
        }
        for action in actions {
            switch action {
            case let .send(tlv, to):
                guard let (link, peer) = neighbourOf[node][to] else { continue }
                let l = links[link]
                controlPackets += 1
                controlBytes += tlv.frameLength
                var arrival = (now + l.latencyMs).milliseconds
                if l.loss > 0, Double.random(in: 0..<1, using: &rng) < l.loss { arrival += Self.retransmissionTimeoutMs }
                if peer == l.b {
                    arrival = max(arrival, l.lastDelivery.0)
                    links[link].lastDelivery.0 = arrival
                } else {
                    arrival = max(arrival, l.lastDelivery.1)
                    links[link].lastDelivery.1 = arrival
                }
                push(tlv, to: peer, link: link, epoch: l.epoch, at: arrival)
            case let .disconnect(id):
                if let (link, _) = neighbourOf[node][id] { setLink(link, up: false) }
            case .forwardingTableChanged:
                lastRouteChange = now
            case .routeAcquired, .routeLost, .queryFailed, .refused:
                break
            }
        }
        schedule(node, wake: wake)
    }

    /// Runs `body` on the router in place (reading a router out of the array would copy it).
    @discardableResult
    private func updateSelected<T>(_ node: Int, _ body: (inout Router) -> T) -> T {
        let (result, delta) = modifyRouter(node) { router in
            let before = router.selectedCount
            let result = body(&router)
            return (result, router.selectedCount - before)
        }
        totalSelected += delta
        if firstFullyConverged == nil, totalSelected == nodeCount * (nodeCount - 1), isFullyConverged() {
            firstFullyConverged = now
        }
        return result
    }

    private func modifyRouter<T>(_ node: Int, _ body: (inout Router) -> T) -> T {
        body(&routers[node])
    }

    private func schedule(_ node: Int) {
        schedule(node, wake: modifyRouter(node) { $0.nextWakeUp })
    }

    private func schedule(_ node: Int, wake: Instant) {
        if let s = scheduledWake[node], s <= wake, s >= now { return }
        scheduledWake[node] = wake
        queue.push(.wake(node: node), at: wake.milliseconds)
    }

    // MARK: - analysis

    /// Every node has a selected route to every other node's /64 (counts can include stale
    /// subnets after restarts, so this checks the real subnets).
    public func isFullyConverged() -> Bool {
        // Through a buffer: subscripting the array of structs from here copies each router.
        // One pass over each table: every other node's /64 has a next hop iff n − 1 of them do.
        routers.withUnsafeBufferPointer { rs in
            for i in rs.indices {
                var reached = 0
                rs[i].forEachNextHop { subnet, _ in
                    if let j = node(of: subnet), Int(j) != i { reached += 1 }
                }
                if reached != rs.count - 1 { return false }
            }
            return true
        }
    }

    /// Shortest hop counts from `source` over links that are up.
    public func shortestHops(from source: Int) -> [Int?] {
        let hops = shortestHops(from: source, adjacency: upAdjacency())
        return hops.map { $0 < 0 ? nil : Int($0) }
    }

    /// Neighbours of each node over links that are up.
    private func upAdjacency() -> [[Int32]] {
        var adjacency = [[Int32]](repeating: [], count: nodeCount)
        for l in links where l.isUp { adjacency[l.a].append(Int32(l.b)); adjacency[l.b].append(Int32(l.a)) }
        return adjacency
    }

    /// Breadth-first hop counts (-1: unreachable).
    private func shortestHops(from source: Int, adjacency: [[Int32]]) -> [Int32] {
        var dist = [Int32](repeating: -1, count: nodeCount)
        dist[source] = 0
        var frontier: [Int32] = [Int32(source)]
        var next: [Int32] = []
        while !frontier.isEmpty {
            for u in frontier {
                for v in adjacency[Int(u)] where dist[Int(v)] < 0 {
                    dist[Int(v)] = dist[Int(u)] + 1
                    next.append(v)
                }
            }
            swap(&frontier, &next)
            next.removeAll(keepingCapacity: true)
        }
        return dist
    }

    public struct PathReport: Sendable {
        /// Ordered pairs (s ≠ d) whose next-hop chain reaches d.
        public var reachablePairs = 0
        /// Ordered pairs connected in the (up) graph.
        public var connectedPairs = 0
        public var loops = 0
        /// Largest (hops taken ÷ shortest hops) over reachable pairs.
        public var maxStretch = 1.0
        public var totalPairs = 0
    }

    /// Follows next hops from every node to every other node's /64.
    ///
    /// Each router's next hop towards each destination is looked up once (n² lookups into
    /// n tables), into a flat matrix of peer indices the walks then follow: walking the
    /// routers' tables directly cost a lookup per hop of every pair, a tenth of a 1000-node run.
    public func analysePaths() -> PathReport {
        var report = PathReport()
        let n = nodeCount
        report.totalPairs = n * (n - 1)
        let peerTowards = nextHopMatrix()
        let adjacency = upAdjacency()
        var visitedStamp = [Int](repeating: -1, count: n)
        var stamp = 0
        for s in 0..<n {
            let shortest = shortestHops(from: s, adjacency: adjacency)
            for d in 0..<n where d != s {
                if shortest[d] >= 0 { report.connectedPairs += 1 }
                var current = s, hops = 0
                stamp += 1
                visitedStamp[s] = stamp
                while current != d {
                    let peer = peerTowards[current * n + d]
                    guard peer >= 0 else { break }
                    hops += 1
                    current = Int(peer)
                    if visitedStamp[current] == stamp, current != d { report.loops += 1; break }
                    visitedStamp[current] = stamp
                }
                if current == d {
                    report.reachablePairs += 1
                    if shortest[d] > 0 { report.maxStretch = max(report.maxStretch, Double(hops) / Double(shortest[d])) }
                }
            }
        }
        return report
    }

    /// `[s * n + d]`: the node `s` forwards to for `d`'s /64, -1 for none (or a next hop that
    /// is no current link).
    private func nextHopMatrix() -> [Int32] {
        let n = nodeCount
        var matrix = [Int32](repeating: -1, count: n * n)
        // Through a buffer: subscripting the array of structs from here copies each router.
        routers.withUnsafeBufferPointer { routers in
            for s in 0..<n {
                routers[s].forEachNextHop { subnet, hop in
                    if let d = node(of: subnet), Int(d) != s, let (_, peer) = neighbourOf[s][hop] {
                        matrix[s * n + Int(d)] = Int32(peer)
                    }
                }
            }
        }
        return matrix
    }
}

/// One node's neighbour handles: a handful, so a list searched in order (a dictionary hashed
/// the handle on every packet sent).
struct Handles {
    private var items: [(id: NeighbourId, link: Int, peer: Int)] = []

    subscript(id: NeighbourId) -> (link: Int, peer: Int)? {
        get {
            for h in items where h.id == id { return (h.link, h.peer) }
            return nil
        }
        set {
            let i = items.firstIndex { $0.id == id }
            switch (i, newValue) {
            case let (i?, v?): items[i] = (id, v.link, v.peer)
            case let (i?, nil): items.remove(at: i)
            case let (nil, v?): items.append((id, v.link, v.peer))
            case (nil, nil): break
            }
        }
    }
}

extension ControlTLV {
    /// Bytes of the whole stream frame carrying this TLV (outer header + Babel header + TLV).
    public var frameLength: Int {
        let body: Int
        switch self {
        case .hello: body = 6
        case let .ihu(i):
            switch i.address {
            case nil: body = 6
            case .v4?: body = 10
            case .v6?: body = 22
            }
        case let .update(u): body = 10 + Self.prefixBytes(u.subnet) + 40
        case let .routeRequest(r): body = 3 + (r.prefix.map(Self.prefixBytes) ?? 0)
        case let .seqNoRequest(s): body = 46 + Self.prefixBytes(s.prefix)
        }
        return 4 + 4 + 2 + body
    }

    private static func prefixBytes(_ s: Subnet) -> Int {
        s.ipv6 != nil && s.prefixLength == 0 ? 0 : (Int(s.prefixLength) + 7) / 8
    }
}

