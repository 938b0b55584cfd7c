import MyceliumCore

/// Feasibility distances (spec §5.7): for each (subnet, router id) we have advertised, the best
/// (seqno, metric) we announced. An Update is feasible if it cannot come from a loop through us.
///
/// Keyed by subnet, with that subnet's router ids in a `SourceList` (at most
/// `RouterLimits.routerIdsPerSubnet`, nearly always one, held in the table's slot): a lookup
/// hashes one word, not a 40-byte router id, and reads one slot. Every Update received and
/// sent touches this table, so its cost is a large part of a node's (and the simulator's) CPU
/// per route.
struct SourceTable {
    struct Distance {
        var metric: Metric
        var seqno: SeqNo
        var expires: Instant
    }

    struct Source {
        let routerId: RouterId
        var distance: Distance
    }

    private var bySubnet = SubnetTable<SourceList>()
    /// (subnet, router id) pairs held in all.
    private(set) var count = 0

    func routerIdCount(subnet: Subnet) -> Int { bySubnet[subnet]?.count ?? 0 }

    func distance(subnet: Subnet, routerId: RouterId) -> Distance? {
        bySubnet[subnet].flatMap { $0.distance(routerId: routerId) }
    }

    /// Where the subnet's sources are, for several checks at one lookup (valid until the
    /// table changes).
    func slot(of subnet: Subnet) -> SubnetTable<SourceList>.Slot? { bySubnet.index(forKey: subnet) }

    /// `routerId`'s distance among the sources at `slot`, read in place.
    func distance(at slot: SubnetTable<SourceList>.Slot?, routerId: RouterId) -> Distance? {
        guard let slot else { return nil }
        return bySubnet[at: slot].distance(routerId: routerId)
    }

    /// How many router ids the sources at `slot` hold.
    func routerIdCount(at slot: SubnetTable<SourceList>.Slot?) -> Int {
        slot.map { bySubnet[at: $0].count } ?? 0
    }

    /// Feasible iff no entry, a newer seqno, the same seqno with a strictly smaller metric, or a
    /// retraction.
    func isFeasible(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric) -> Bool {
        Self.isFeasible(distance(subnet: subnet, routerId: routerId), seqno: seqno, metric: metric)
    }

    static func isFeasible(_ fd: Distance?, seqno: SeqNo, metric: Metric) -> Bool {
        if metric.isInfinite { return true }
        guard let fd else { return true }
        return seqno.isGreater(than: fd.seqno) || (seqno == fd.seqno && metric < fd.metric)
    }

    /// Records an Update we send: no entry → insert (retractions too); newer seqno → replace;
    /// same seqno with a smaller metric → replace; otherwise only the GC timer is refreshed.
    mutating func recordSent(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric, now: Instant) {
        let expires = now + ProtocolConstants.sourceHoldMs
        // `[key, default:]` as an inout argument mutates the stored list in place.
        if bySubnet[subnet, default: .vacant].record(routerId: routerId, seqno: seqno, metric: metric, expires: expires) {
            count += 1
        }
    }

    /// Drops entries not refreshed for 30 minutes. Returns how many went.
    @discardableResult
    mutating func collectGarbage(now: Instant) -> Int {
        let before = count
        bySubnet.updateAll { _, sources in
            sources.removeExpired(now: now)
            return sources.count > 0
        }
        count = bySubnet.reduce(0) { $0 + $1.value.count }
        return before - count
    }
}

/// One subnet's sources: the first inline in the table's slot (nearly always the only one:
/// a second router id appears only when the owner restarts), the rest in an array. Inline, a
/// feasibility check reads the slot it has just found; an array of one was one more cache miss
/// (and a retain) per Update.
struct SourceList: SubnetTableValue {
    private var first: SourceTable.Source?
    private var rest: [SourceTable.Source] = []

    static var vacant: SourceList { SourceList() }

    var count: Int { first == nil ? 0 : 1 + rest.count }

    func distance(routerId: RouterId) -> SourceTable.Distance? {
        if let first, first.routerId == routerId { return first.distance }
        for s in rest where s.routerId == routerId { return s.distance }
        return nil
    }

    /// Updates or appends `routerId`'s distance: newer seqno, or the same with a smaller
    /// metric, replaces it; the expiry is always refreshed. True when appended.
    mutating func record(routerId: RouterId, seqno: SeqNo, metric: Metric, expires: Instant) -> Bool {
        func update(_ d: inout SourceTable.Distance) {
            if seqno.isGreater(than: d.seqno) || (seqno == d.seqno && metric < d.metric) {
                d.metric = metric
                d.seqno = seqno
            }
            d.expires = expires
        }
        let new = SourceTable.Source(routerId: routerId,
                                     distance: SourceTable.Distance(metric: metric, seqno: seqno, expires: expires))
        guard first != nil else {
            first = new
            return true
        }
        if first!.routerId == routerId {
            update(&first!.distance)
            return false
        }
        for i in rest.indices where rest[i].routerId == routerId {
            update(&rest[i].distance)
            return false
        }
        rest.append(new)
        return true
    }

    /// Drops the sources that expired by `now`, keeping the others in order.
    mutating func removeExpired(now: Instant) {
        var kept = first.map { [$0] } ?? []
        kept.append(contentsOf: rest)
        kept.removeAll { $0.distance.expires <= now }
        first = kept.first
        rest = Array(kept.dropFirst())
    }
}
