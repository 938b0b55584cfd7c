import MyceliumCore

/// RouteRequests we sent or forwarded, per subnet (spec §5.10): who got which generation when.
struct RouteRequestCache {
    struct Sent {
        var generation: UInt8
        var at: Instant
    }

    private var bySubnet: [Subnet: [NeighbourId: Sent]] = [:]

    /// True unless the neighbour got a request for `subnet` within 15 s with a generation no
    /// larger than `generation` (a smaller generation is worth sending again: it travels further).
    func shouldSend(_ subnet: Subnet, generation: UInt8, to neighbour: NeighbourId, now: Instant) -> Bool {
        guard let sent = bySubnet[subnet]?[neighbour], now - sent.at < ProtocolConstants.routeQueryTimeoutMs else { return true }
        return generation < sent.generation
    }

    /// Recording for `subnet` keeps the cache within `RouterLimits.routeRequestEntries`.
    func canRecord(_ subnet: Subnet) -> Bool {
        bySubnet.count < RouterLimits.routeRequestEntries || bySubnet[subnet] != nil
    }

    mutating func record(_ subnet: Subnet, generation: UInt8, to neighbour: NeighbourId, now: Instant) {
        bySubnet[subnet, default: [:]][neighbour] = Sent(generation: generation, at: now)
    }

    mutating func forget(_ neighbour: NeighbourId) {
        for key in Array(bySubnet.keys) {
            bySubnet[key]![neighbour] = nil
            if bySubnet[key]!.isEmpty { bySubnet[key] = nil }
        }
    }

    mutating func expire(now: Instant) {
        bySubnet = bySubnet.compactMapValues { sent in
            let live = sent.filter { now - $0.value.at < ProtocolConstants.routeQueryTimeoutMs }
            return live.isEmpty ? nil : live
        }
    }
}

/// SeqNoRequests we sent or forwarded (spec §5.11), keyed by (router id, prefix, seqno).
/// Indexed by (router id, prefix) first: every Update asks "is anyone waiting for this?", so
/// that question must not scan the whole cache.
struct SeqNoRequestCache {
    struct Key: Hashable {
        let routerId: RouterId
        let prefix: Subnet
        let seqno: SeqNo
    }

    struct Source: Hashable {
        let routerId: RouterId
        let prefix: Subnet
    }

    struct Entry {
        var firstSent: Instant
        /// Neighbours whose request we forwarded: the answer goes back to them.
        var requesters: Set<NeighbourId> = []
        /// When each neighbour was last asked.
        var targets: [NeighbourId: Instant] = [:]
    }

    private(set) var entries: [Source: [SeqNo: Entry]] = [:]
    /// Entries over every source (`RouterLimits.seqnoRequestEntries`).
    private(set) var count = 0

    /// Recording `key` keeps the cache within its limit.
    func canRecord(_ key: Key) -> Bool {
        count < RouterLimits.seqnoRequestEntries || entries[Self.source(key)]?[key.seqno] != nil
    }

    private static func source(_ key: Key) -> Source { Source(routerId: key.routerId, prefix: key.prefix) }

    /// A request for the same key sent or forwarded by us recently: less than 4 s ago
    /// (`RouterTuning.seqnoRetryMs`). Rust drops the same key for 60 s. Then a request lost
    /// with a crashed next hop stalls everyone who asked for a minute, and after that nobody
    /// asks again. Here the requester's retry is forwarded again once 4 s have passed, while a
    /// request circling a loop (back within milliseconds) is still dropped.
    func isDuplicate(_ key: Key, now: Instant) -> Bool {
        guard let e = entries[Self.source(key)]?[key.seqno] else { return false }
        let last = e.targets.values.max() ?? e.firstSent
        return now - last < RouterTuning.seqnoRetryMs && now - e.firstSent < ProtocolConstants.seqnoRequestDedupMs
    }

    /// `neighbour` got this request from us less than `RouterTuning.seqnoRetryMs` ago.
    func wasAsked(_ key: Key, neighbour: NeighbourId, now: Instant) -> Bool {
        entries[Self.source(key)]?[key.seqno]?.targets[neighbour].map { now - $0 < RouterTuning.seqnoRetryMs } ?? false
    }

    /// When `neighbour` was last asked about (router id, prefix) for any seqno.
    func lastAsked(routerId: RouterId, prefix: Subnet, neighbour: NeighbourId) -> Instant? {
        entries[Source(routerId: routerId, prefix: prefix)]?.values.compactMap { $0.targets[neighbour] }.max()
    }

    mutating func recordSent(_ key: Key, to neighbour: NeighbourId, now: Instant) {
        if entries[Self.source(key)]?[key.seqno] == nil { count += 1 }
        entries[Self.source(key), default: [:]][key.seqno, default: Entry(firstSent: now)].targets[neighbour] = now
    }

    /// Remembers who asked; a new entry only within the cache's limit.
    mutating func addRequester(_ key: Key, _ neighbour: NeighbourId, now: Instant) {
        if entries[Self.source(key)]?[key.seqno] == nil {
            guard canRecord(key) else { return }
            count += 1
        }
        entries[Self.source(key), default: [:]][key.seqno, default: Entry(firstSent: now)].requesters.insert(neighbour)
    }

    /// The smallest seqno some neighbour waits for (we forwarded its request) for (router id,
    /// prefix), if any.
    func awaitedSeqno(routerId: RouterId, prefix: Subnet) -> SeqNo? {
        guard !entries.isEmpty, let bySeqno = entries[Source(routerId: routerId, prefix: prefix)] else { return nil }
        var lowest: SeqNo?
        for (seqno, entry) in bySeqno where !entry.requesters.isEmpty {
            if lowest.map({ seqno.isLess(than: $0) }) ?? true { lowest = seqno }
        }
        return lowest
    }

    /// Requesters waiting for an Update of (router id, prefix) with at least their seqno;
    /// they are answered once, so their entries are cleared.
    mutating func takeRequesters(routerId: RouterId, prefix: Subnet, seqno: SeqNo) -> Set<NeighbourId> {
        let source = Source(routerId: routerId, prefix: prefix)
        guard let bySeqno = entries[source] else { return [] }
        var result: Set<NeighbourId> = []
        for (requested, entry) in bySeqno where !entry.requesters.isEmpty && !seqno.isLess(than: requested) {
            result.formUnion(entry.requesters)
            entries[source]![requested]!.requesters = []
        }
        return result
    }

    mutating func forget(_ neighbour: NeighbourId) {
        for source in Array(entries.keys) {
            for seqno in Array(entries[source]!.keys) {
                entries[source]![seqno]!.requesters.remove(neighbour)
                entries[source]![seqno]!.targets[neighbour] = nil
            }
        }
    }

    mutating func expire(now: Instant) {
        entries = entries.compactMapValues { bySeqno in
            let live = bySeqno.filter { now - $0.value.firstSent < ProtocolConstants.seqnoRequestDedupMs }
            return live.isEmpty ? nil : live
        }
        count = entries.values.reduce(0) { $0 + $1.count }
    }
}
