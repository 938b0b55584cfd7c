import MyceliumCore

/// Feasibility distances (spec §5.7): for each (subnet, router id) we have advertised, the best
/// (seqno, metric) we announced. An Update is feasible if it cannot come from a loop through us.
///
/// Keyed by subnet, with that subnet's router ids in a short array (at most
/// `RouterLimits.routerIdsPerSubnet`, nearly always one): a lookup hashes one word, not a
/// 40-byte router id, and the per-subnet count is the array's length. Every Update received
/// and sent touches this table, so its cost is a large part of a node's (and the simulator's)
/// CPU per route.
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

    private var bySubnet: [Subnet: [Source]] = [:]
    /// (subnet, router id) pairs held in all.
    private(set) var count = 0

    func routerIdCount(subnet: Subnet) -> Int { bySubnet[subnet]?.count ?? 0 }

    func distance(subnet: Subnet, routerId: RouterId) -> Distance? {
        bySubnet[subnet].flatMap { Self.distance(in: $0, routerId: routerId) }
    }

    /// The subnet's sources (router ids we advertised it with), for several checks at one lookup.
    func sources(of subnet: Subnet) -> [Source] { bySubnet[subnet] ?? [] }

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

    static func distance(in sources: [Source], routerId: RouterId) -> Distance? {
        for s in sources where s.routerId == routerId { return s.distance }
        return nil
    }

    /// Records an Update we send: no entry → insert (retractions too); newer seqno → replace;
    /// same seqno with a smaller metric → replace; otherwise only the GC timer is refreshed.
    mutating func recordSent(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric, now: Instant) {
        let expires = now + ProtocolConstants.sourceHoldMs
        // `[key, default:]` as an inout argument mutates the stored array in place.
        if Self.record(in: &bySubnet[subnet, default: []], routerId: routerId, seqno: seqno, metric: metric, expires: expires) {
            count += 1
        }
    }

    /// Updates or appends `routerId`'s distance; true when appended.
    private static func record(in sources: inout [Source], routerId: RouterId, seqno: SeqNo, metric: Metric,
                               expires: Instant) -> Bool {
        for i in sources.indices where sources[i].routerId == routerId {
            let fd = sources[i].distance
            if seqno.isGreater(than: fd.seqno) || (seqno == fd.seqno && metric < fd.metric) {
                sources[i].distance.metric = metric
                sources[i].distance.seqno = seqno
            }
            sources[i].distance.expires = expires
            return false
        }
        sources.append(Source(routerId: routerId, distance: Distance(metric: metric, seqno: seqno, expires: expires)))
        return true
    }

    /// Drops entries not refreshed for 30 minutes. Returns how many went.
    @discardableResult
    mutating func collectGarbage(now: Instant) -> Int {
        let before = count
        var emptied: [Subnet] = []
        for slot in bySubnet.indices {
            let subnet = bySubnet.keys[slot]
            bySubnet.values[slot].removeAll { $0.distance.expires <= now }
            if bySubnet.values[slot].isEmpty { emptied.append(subnet) }
        }
        for subnet in emptied { bySubnet[subnet] = nil }
        count = bySubnet.values.reduce(0) { $0 + $1.count }
        return before - count
    }
}
