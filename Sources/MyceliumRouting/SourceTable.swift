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
    /// A subnet's sources after its first, for the few subnets that have more than one (a
    /// second router id appears when the owner restarts): out of the table's slot, which then
    /// takes 32 bytes instead of 40 (a router has one per subnet of the network).
    private var overflow: [Subnet: [SourceList.Source]] = [:]
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

    func routerIdCount(subnet: Subnet) -> Int { routerIdCount(at: slot(of: subnet)) }

    func distance(subnet: Subnet, routerId: RouterId) -> Distance? {
        distance(at: slot(of: subnet), routerId: routerId)
    }

    /// Where the subnet's sources are, for several checks at one lookup (valid until the
    /// table changes).
    func slot(of subnet: Subnet) -> SubnetTable<SourceList>.Slot? { bySubnet.index(forKey: subnet) }

    /// `routerId`'s distance among the sources at `slot`, read in place.
    func distance(at slot: SubnetTable<SourceList>.Slot?, routerId: RouterId) -> Distance? {
        guard let slot else { return nil }
        let k = key(routerId)
        let first = bySubnet[at: slot].first
        if first.matches(k) { return first.distance }
        guard first.hasMore else { return nil }
        return overflow[bySubnet.key(at: slot)]?.first { $0.matches(k) }?.distance
    }

    /// How many router ids the sources at `slot` hold.
    func routerIdCount(at slot: SubnetTable<SourceList>.Slot?) -> Int {
        guard let slot else { return 0 }
        let first = bySubnet[at: slot].first
        return first.hasMore ? 1 + (overflow[bySubnet.key(at: slot)]?.count ?? 0) : 1
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
        let k = key(routerId)
        func update(_ s: inout SourceList.Source) {
            if seqno.isGreater(than: s.seqno) || (seqno == s.seqno && metric < s.metric) {
                s.metric = metric
                s.seqno = seqno
            }
            s.expires = expires
        }
        let new = SourceList.Source(k, Distance(metric: metric, seqno: seqno, expires: expires))
        // In place: `[key, default:]` as an inout argument mutates the stored slot.
        let appended = Self.record(&bySubnet[subnet, default: .vacant].first, &overflow, subnet: subnet, key: k, new: new, update: update)
        if appended { count += 1 }
    }

    /// Records `new` at a subnet whose first source is `first` and whose others are in
    /// `overflow`. True when a router id was added.
    private static func record(_ first: inout SourceList.Source, _ overflow: inout [Subnet: [SourceList.Source]], subnet: Subnet,
                               key: SourceKey, new: SourceList.Source, update: (inout SourceList.Source) -> Void) -> Bool {
        if first.isEmpty {
            first = new
            return true
        }
        if first.matches(key) {
            update(&first)
            return false
        }
        var more = overflow[subnet] ?? []
        if let i = more.firstIndex(where: { $0.matches(key) }) {
            update(&more[i])
            overflow[subnet] = more
            return false
        }
        more.append(new)
        overflow[subnet] = more
        first.hasMore = true
        return true
    }

    /// Drops entries not refreshed for 30 minutes. Returns how many went.
    @discardableResult
    mutating func collectGarbage(now: Instant) -> Int {
        let before = count
        // The few subnets with several sources first: their survivors, in order, refill the
        // slot and the overflow.
        for (subnet, more) in overflow {
            guard let slot = bySubnet.index(forKey: subnet) else { continue }
            let kept = ([bySubnet[at: slot].first] + more).filter { $0.expires > now }
            if kept.isEmpty {
                bySubnet.remove(at: slot)
                overflow[subnet] = nil
                continue
            }
            var first = kept[0]
            first.hasMore = kept.count > 1
            bySubnet[at: slot].first = first
            overflow[subnet] = kept.count > 1 ? Array(kept.dropFirst()) : nil
        }
        bySubnet.updateAll { _, sources in
            sources.first.hasMore || sources.first.expires > now
        }
        count = bySubnet.count + overflow.values.reduce(0) { $0 + $1.count }
        return before - count
    }
}

/// A router id in the source table: its other word (`RouterId.tail`) and whether its key is
/// ours (else it is the subnet's owner's).
struct SourceKey: Equatable {
    let tail: UInt64
    let ours: Bool
}

/// One subnet's first source, in the table's slot (nearly always its only one: a second
/// router id appears only when the owner restarts; the others wait in `SourceTable`'s
/// overflow). Inline, a feasibility check reads the slot it has just found. 24 bytes.
struct SourceList: SubnetTableValue {
    /// The key's parts and the distance's fields side by side (a `SourceKey` and a `Distance`
    /// as fields would pad to 40 bytes).
    struct Source {
        var tail: UInt64
        var expires: Instant
        var seqno: SeqNo
        var metric: Metric
        /// Bits 0–1: 0 no source (an empty list), 1 the owner's key, 2 ours. Bit 2 (first
        /// source only): more sources in the overflow.
        private var flags: UInt8

        init(_ key: SourceKey, _ d: SourceTable.Distance) {
            tail = key.tail
            expires = d.expires
            seqno = d.seqno
            metric = d.metric
            flags = key.ours ? 2 : 1
        }

        static let none = Source(SourceKey(tail: 0, ours: false), SourceTable.Distance(metric: .zero, seqno: SeqNo(0), expires: .zero)).cleared

        private var cleared: Source {
            var s = self
            s.flags = 0
            return s
        }

        var isEmpty: Bool { flags & 3 == 0 }

        var hasMore: Bool {
            get { flags & 4 != 0 }
            set { flags = newValue ? flags | 4 : flags & ~4 }
        }

        func matches(_ key: SourceKey) -> Bool { tail == key.tail && flags & 3 == (key.ours ? 2 : 1) }

        var distance: SourceTable.Distance { SourceTable.Distance(metric: metric, seqno: seqno, expires: expires) }
    }

    var first = Source.none

    static var vacant: SourceList { SourceList() }
}
