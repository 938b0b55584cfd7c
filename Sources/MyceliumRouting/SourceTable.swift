import MyceliumCore

/// Feasibility distances (spec §5.7): for each (subnet, router id) we have advertised, the best
/// (seqno, metric) we announced. An Update is feasible if it cannot come from a loop through us.
///
/// Keyed by subnet, with that subnet's router ids in a `SourceList` (at most
/// `RouterLimits.routerIdsPerSubnet`, nearly always one, held in the table's slot): a lookup
/// hashes one word, not a 40-byte router id, and reads one slot. Every Update received and
/// sent touches this table, so its cost is a large part of a node's (and the simulator's) CPU
/// per route, and its size a large part of a node's memory per route.
///
/// A router id is stored without its public key (`SourceKey`): we only ever announce a subnet
/// with its owner's router id (a selected route passed the owner check) or with ours (our own
/// /64, and retractions, which carry the sender's id), so a flag for "ours" is all the key
/// needs. Lookups follow the same rule: a router id whose key is not ours stands for the
/// subnet's owner, so callers look up only router ids that passed the owner check, or ours.
struct SourceTable {
    struct Distance {
        var metric: Metric
        var seqno: SeqNo
        var expires: Instant
    }

    private var bySubnet = SubnetTable<SourceList>()
    /// (subnet, router id) pairs held in all.
    private(set) var count = 0
    /// Our public key: router ids carrying it are flagged as ours.
    let ourKey: PublicKey

    init(ourKey: PublicKey) {
        self.ourKey = ourKey
    }

    func key(_ routerId: RouterId) -> SourceKey {
        SourceKey(tail: routerId.tail, ours: routerId.publicKey == ourKey)
    }

    func routerIdCount(subnet: Subnet) -> Int { bySubnet[subnet]?.count ?? 0 }

    func distance(subnet: Subnet, routerId: RouterId) -> Distance? {
        bySubnet[subnet].flatMap { $0.distance(key(routerId)) }
    }

    /// Where the subnet's sources are, for several checks at one lookup (valid until the
    /// table changes).
    func slot(of subnet: Subnet) -> SubnetTable<SourceList>.Slot? { bySubnet.index(forKey: subnet) }

    /// `routerId`'s distance among the sources at `slot`, read in place.
    func distance(at slot: SubnetTable<SourceList>.Slot?, routerId: RouterId) -> Distance? {
        guard let slot else { return nil }
        return bySubnet[at: slot].distance(key(routerId))
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
        let key = key(routerId)
        // `[key, default:]` as an inout argument mutates the stored list in place.
        if bySubnet[subnet, default: .vacant].record(key, seqno: seqno, metric: metric, expires: expires) {
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

/// A router id in the source table: its other word (`RouterId.tail`) and whether its key is
/// ours (else it is the subnet's owner's).
struct SourceKey: Equatable {
    let tail: UInt64
    let ours: Bool
}

/// One subnet's sources: the first inline in the table's slot (nearly always the only one:
/// a second router id appears only when the owner restarts), the rest in an array. Inline, a
/// feasibility check reads the slot it has just found; an array of one was one more cache miss
/// (and a retain) per Update. 32 bytes with one source inline.
struct SourceList: SubnetTableValue {
    /// 24 bytes: the key's parts and the distance's fields side by side (a `SourceKey` and a
    /// `Distance` as fields would pad to 40).
    struct Source {
        var tail: UInt64
        var expires: Instant
        var seqno: SeqNo
        var metric: Metric
        /// 0: no source (only in `first`, when the list is empty); 1: the owner's key; 2: ours.
        var kind: UInt8

        init(_ key: SourceKey, _ d: SourceTable.Distance) {
            tail = key.tail
            expires = d.expires
            seqno = d.seqno
            metric = d.metric
            kind = key.ours ? 2 : 1
        }

        static let none = Source(tail: 0, expires: .zero, seqno: SeqNo(0), metric: .zero, kind: 0)

        private init(tail: UInt64, expires: Instant, seqno: SeqNo, metric: Metric, kind: UInt8) {
            (self.tail, self.expires, self.seqno, self.metric, self.kind) = (tail, expires, seqno, metric, kind)
        }

        func matches(_ key: SourceKey) -> Bool { tail == key.tail && kind == (key.ours ? 2 : 1) }

        var distance: SourceTable.Distance {
            get { SourceTable.Distance(metric: metric, seqno: seqno, expires: expires) }
            set { (metric, seqno, expires) = (newValue.metric, newValue.seqno, newValue.expires) }
        }
    }

    private var first = Source.none
    private var rest: [Source] = []

    static var vacant: SourceList { SourceList() }

    var count: Int { first.kind == 0 ? 0 : 1 + rest.count }

    func distance(_ key: SourceKey) -> SourceTable.Distance? {
        if first.kind != 0, first.matches(key) { return first.distance }
        for s in rest where s.matches(key) { return s.distance }
        return nil
    }

    /// Updates or appends `key`'s distance: newer seqno, or the same with a smaller metric,
    /// replaces it; the expiry is always refreshed. True when appended.
    mutating func record(_ key: SourceKey, seqno: SeqNo, metric: Metric, expires: Instant) -> Bool {
        func update(_ s: inout Source) {
            if seqno.isGreater(than: s.seqno) || (seqno == s.seqno && metric < s.metric) {
                s.metric = metric
                s.seqno = seqno
            }
            s.expires = expires
        }
        let new = Source(key, SourceTable.Distance(metric: metric, seqno: seqno, expires: expires))
        guard first.kind != 0 else {
            first = new
            return true
        }
        if first.matches(key) {
            update(&first)
            return false
        }
        for i in rest.indices where rest[i].matches(key) {
            update(&rest[i])
            return false
        }
        rest.append(new)
        return true
    }

    /// Drops the sources that expired by `now`, keeping the others in order.
    mutating func removeExpired(now: Instant) {
        var kept = first.kind == 0 ? [] : [first]
        kept.append(contentsOf: rest)
        kept.removeAll { $0.expires <= now }
        first = kept.first ?? .none
        rest = Array(kept.dropFirst())
    }
}
