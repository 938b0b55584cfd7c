import MyceliumCore

/// What one neighbour may make the router hold or do (our limits, not protocol constants;
/// every value is listed in docs/security.md with the counter that shows it being hit).
///
/// Rust Mycelium has none of these. The values leave honest traffic far below them: Rust sends
/// a Hello and an IHU every 20 s, its own Update every 5 min, and a table of a few thousand
/// routes when asked with a wildcard RouteRequest.
public enum RouterLimits {
    /// Routes (subnet entries) one neighbour may have announced to us at once.
    public static let routesPerNeighbour = 50_000
    /// Subnets in the routing table in all.
    public static let subnets = 200_000
    /// Router ids the source table keeps for one subnet (a node gets a new one each restart and
    /// entries live 30 min; more than this for one /64 is someone rotating ids).
    public static let routerIdsPerSubnet = 16
    /// Subnets being looked for at once (RouteRequests and SeqNoRequests outstanding).
    public static let pendingQueries = 10_000
    /// SeqNoRequest cache entries (requests sent or forwarded in the last 60 s).
    public static let seqnoRequestEntries = 20_000
    /// Subnets in the RouteRequest cache (requests sent or forwarded in the last 15 s).
    public static let routeRequestEntries = 20_000
    /// New queries the datapath may start (a packet for a destination without a route): a
    /// burst, then per second. A peer forwarding packets to random subnets would otherwise make
    /// us send one RouteRequest to every other neighbour per packet.
    public static let queryBurst = 500
    public static let queriesPerSecond = 100
    /// Lost routes asked for again: a burst, then per second. A peer that announced thousands
    /// of routes and left would otherwise have us send requests for all of them to every
    /// other neighbour at each retry, and their per-peer buckets would refuse us.
    public static let retryBurst = 200
    public static let retriesPerSecond = 20
}

/// Per-neighbour token buckets, one per control TLV kind. A TLV that finds its bucket empty is
/// dropped and counted (`RouterStats.tlvsRateLimited`); nothing is sent in answer to it.
struct ControlBuckets {
    /// Rust: one every 20 s. We answer each with an IHU.
    var hello: TokenBucket
    var ihu: TokenBucket
    /// A wildcard RouteRequest answer can carry a whole table: the burst holds one, the rate
    /// the churn of a large network.
    var update: TokenBucket
    var routeRequest: TokenBucket
    /// "Send me your whole table": two at once, then one a minute.
    var wildcard: TokenBucket
    var seqnoRequest: TokenBucket

    init(now: Instant) {
        let t = now.milliseconds
        hello = TokenBucket(burst: 16, rate: 1, perMs: 1_000, now: t)
        ihu = TokenBucket(burst: 16, rate: 1, perMs: 1_000, now: t)
        update = TokenBucket(burst: RouterLimits.routesPerNeighbour, rate: 1_000, perMs: 1_000, now: t)
        routeRequest = TokenBucket(burst: 256, rate: 32, perMs: 1_000, now: t)
        wildcard = TokenBucket(burst: 2, rate: 1, perMs: 60_000, now: t)
        seqnoRequest = TokenBucket(burst: 256, rate: 32, perMs: 1_000, now: t)
    }

    /// Spends a token for `tlv`; false if that kind is over its rate.
    mutating func admit(_ tlv: ControlTLV, now: Instant) -> Bool {
        let t = now.milliseconds
        switch tlv {
        case .hello: return hello.take(now: t)
        case .ihu: return ihu.take(now: t)
        case .update: return update.take(now: t)
        case let .routeRequest(r): return r.isWildcard ? wildcard.take(now: t) : routeRequest.take(now: t)
        case .seqNoRequest: return seqnoRequest.take(now: t)
        }
    }
}
