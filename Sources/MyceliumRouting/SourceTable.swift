import MyceliumCore

/// Feasibility distances (spec §5.7): for each (subnet, router id) we have advertised, the best
/// (seqno, metric) we announced. An Update is feasible if it cannot come from a loop through us.
struct SourceTable {
    struct Key: Hashable {
        let subnet: Subnet
        let routerId: RouterId
    }

    struct Distance {
        var metric: Metric
        var seqno: SeqNo
        var expires: Instant
    }

    private(set) var entries: [Key: Distance] = [:]
    /// Router ids with an entry, per subnet (`RouterLimits.routerIdsPerSubnet`).
    private var idsPerSubnet: [Subnet: Int] = [:]

    func routerIdCount(subnet: Subnet) -> Int { idsPerSubnet[subnet] ?? 0 }

    func distance(subnet: Subnet, routerId: RouterId) -> Distance? {
        entries[Key(subnet: subnet, routerId: routerId)]
    }

    /// Feasible iff no entry, a newer seqno, the same seqno with a strictly smaller metric, or a
    /// retraction.
    func isFeasible(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric) -> Bool {
        if metric.isInfinite { return true }
        guard let fd = distance(subnet: subnet, routerId: routerId) else { return true }
        return seqno.isGreater(than: fd.seqno) || (seqno == fd.seqno && metric < fd.metric)
    }

    /// Records an Update we send: no entry → insert (retractions too); newer seqno → replace;
    /// same seqno with a smaller metric → replace; otherwise only the GC timer is refreshed.
    mutating func recordSent(subnet: Subnet, routerId: RouterId, seqno: SeqNo, metric: Metric, now: Instant) {
        let key = Key(subnet: subnet, routerId: routerId)
        let expires = now + ProtocolConstants.sourceHoldMs
        guard var fd = entries[key] else {
            entries[key] = Distance(metric: metric, seqno: seqno, expires: expires)
            idsPerSubnet[subnet, default: 0] += 1
            return
        }
        if seqno.isGreater(than: fd.seqno) || (seqno == fd.seqno && metric < fd.metric) {
            fd.metric = metric
            fd.seqno = seqno
        }
        fd.expires = expires
        entries[key] = fd
    }

    /// Drops entries not refreshed for 30 minutes. Returns how many went.
    @discardableResult
    mutating func collectGarbage(now: Instant) -> Int {
        let before = entries.count
        entries = entries.filter { $0.value.expires > now }
        idsPerSubnet.removeAll(keepingCapacity: true)
        for key in entries.keys { idsPerSubnet[key.subnet, default: 0] += 1 }
        return before - entries.count
    }
}
